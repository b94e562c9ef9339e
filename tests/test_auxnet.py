"""The Aux-Net (lets_core/auxnet.py): its learngene must match its configuration, it compiles with
torch.compile(fullgraph=True), and shared_generation gives one generation per optimizer step under
gradient accumulation."""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest
import torch

import lets_core

# Inductor's C++ code generation takes ~2.5 min on the 2-core CI machine; "aot_eager" runs the same
# Dynamo capture (fullgraph) and AOTAutograd (fake kernels, autograd formulas, functionalization)
# and executes the graph eagerly. LETS_CORE_COMPILE_BACKEND=inductor runs the full compiler.
BACKEND = os.environ.get("LETS_CORE_COMPILE_BACKEND", "aot_eager")


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_accumulated_gradients_match_per_micro_batch_generation():
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    twin = copy.deepcopy(aux)
    batches = [(torch.randn(3, 1, 28, 28), torch.randint(0, 10, (3,))) for _ in range(3)]
    for x, y in batches:
        torch.nn.functional.cross_entropy(aux(x), y).backward()
    with twin.shared_generation():
        for x, y in batches:
            torch.nn.functional.cross_entropy(twin(x), y).backward()
        assert all(p.grad is None for p in twin.parameters())  # nothing reaches them before the exit
    expected, got = _grads(aux), _grads(twin)
    assert expected.keys() == got.keys() and len(got) == sum(p.requires_grad for p in aux.parameters())
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_state_is_restored_after_errors_and_nesting_is_refused():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    with pytest.raises(ZeroDivisionError):
        with aux.shared_generation():
            1 / 0
    assert aux._shared_state is None and all(p.grad is None for p in aux.parameters())
    with aux.shared_generation():
        with pytest.raises(RuntimeError, match="cannot be nested"):
            with aux.shared_generation():
                pass
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        plain = aux(x)
        with aux.shared_generation():
            torch.testing.assert_close(aux(x), plain)


def test_aux_rejects_learngene_of_other_config():
    shallower = dataclasses.replace(lets_core.presets.tiny().learngene, depth=2)
    with pytest.raises(ValueError, match="differs from the Aux-Net"):
        lets_core.AuxNet(lets_core.presets.tiny(), learngene=lets_core.Learngene(shallower))


def test_torch_compile_fullgraph_forward_backward_of_auxnet():
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    x = torch.randn(2, 1, 28, 28)
    params = [p for p in aux.parameters() if p.requires_grad]
    eager_out = aux(x)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), params)
    compiled = torch.compile(aux, fullgraph=True, backend=BACKEND)
    out = compiled(x)
    grads = torch.autograd.grad(out.square().sum(), params)
    torch.testing.assert_close(out, eager_out, rtol=1e-4, atol=1e-5)
    for ge, gc in zip(eager_grads, grads):
        torch.testing.assert_close(gc, ge, rtol=1e-3, atol=1e-5)


def test_timm_optimizer_factory_spares_what_param_groups_spares():
    """timm's create_optimizer_v2 decayed the Aux-Net's norms, biases, F, G and pos_embed: they are
    2-D (stacked) or named without ".bias", and the Aux-Net declared no no_weight_decay()."""
    from timm.optim import create_optimizer_v2
    from lets_core.train import param_groups

    aux = lets_core.AuxNet(lets_core.presets.tiny())
    names = {id(p): n for n, p in aux.named_parameters()}
    ours = {names[id(p)] for g in param_groups(aux, 0.05) if g["weight_decay"] == 0.0 for p in g["params"]}
    opt = create_optimizer_v2(aux, opt="adamw", lr=1e-3, weight_decay=0.05)
    timms = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert timms == ours
    assert {"pos_embed", "depth.g", "width.f_e", "width.f_ffn", "learngene.blocks.norm1_w",
            "learngene.blocks.qkv_b", "learngene.fc_norm_w", "learngene.head_b"} <= timms
    assert "learngene.blocks.qkv_w" not in timms and "learngene.patch_w" not in timms
    # The declared names are the Aux-Net's own parameters (the frozen learngene pos_embed included).
    assert aux.no_weight_decay() <= set(dict(aux.named_parameters()))


def test_an_optimizer_step_inside_shared_generation_is_refused():
    """Inside the block the parameters have no gradient yet: a step there silently changed nothing,
    and the next step outside applied every micro-batch at once."""
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    opt = torch.optim.SGD(aux.parameters(), lr=0.5)
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(RuntimeError, match=r"SGD.step\(\) was called inside aux.shared_generation\(\).*call "
                                           r"optimizer.step\(\) after the block"):
        with aux.shared_generation():
            aux(x).sum().backward()
            opt.step()
    # The hook is gone with the block; another model's optimizer is never concerned.
    other = torch.nn.Linear(2, 2)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
    with aux.shared_generation():
        other(torch.randn(1, 2)).sum().backward()
        other_opt.step()
    opt.step()


@pytest.mark.parametrize("change", [
    lambda aux: aux.width.f_e.mul_(3),
    lambda aux: aux.load_state_dict(lets_core.AuxNet(lets_core.presets.tiny()).state_dict()),
    lambda aux: aux.load_state_dict(lets_core.AuxNet(lets_core.presets.tiny()).state_dict(), assign=True),
])
def test_parameters_changed_inside_shared_generation_are_refused_not_ignored(change):
    """The block's forwards kept running the weights generated on entry (logits unchanged after
    f_e *= 3), and under grad its exit failed with autograd's generic in-place message."""
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    x = torch.randn(2, 1, 28, 28)
    message = r"parameters of the Aux-Net changed inside aux.shared_generation\(\).*after the block"
    with torch.no_grad(), pytest.raises(RuntimeError, match=message):
        with aux.shared_generation():
            aux(x)
            change(aux)
            aux(x)  # would run the old weights
    with pytest.raises(RuntimeError, match=message):
        with aux.shared_generation():
            aux(x).sum().backward()
            with torch.no_grad():  # as an optimizer or a manual edit changes them
                change(aux)  # the exit's backward would differentiate the old weights
    assert aux._shared_state is None
    aux(x).sum().backward()  # usable again after the error


def test_strategy_is_checked_without_des_sizes():
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(lets_core.DesSizeError, match="unknown selection strategy 'bogus'"):
        aux(x, strategy="bogus")
    assert aux(x, strategy="top-l2").shape == (2, 10)  # a valid one only picks the Des-Nets' neurons


def test_wrong_objects_given_to_the_aux_net_are_named():
    cfg = lets_core.presets.tiny()
    with pytest.raises(TypeError, match="AuxNet needs a LetsConfig, got LearngeneConfig"):
        lets_core.AuxNet(cfg.learngene)
    with pytest.raises(TypeError, match="AuxNet needs a LetsConfig, got dict; build one from a dict with "
                                        "LetsConfig.from_dict"):
        lets_core.AuxNet(cfg.to_dict())
    from lets_core.vit import build_vit
    vit = build_vit(cfg.learngene, cfg.learngene.embed_dim, cfg.learngene.depth)
    with pytest.raises(TypeError, match="learngene must be a lets_core.Learngene or None, got VisionTransformer.*"
                                        "Learngene.from_timm"):
        lets_core.AuxNet(cfg, learngene=vit)


def test_mixed_dtypes_are_named_with_the_fix():
    """A float64 learngene beside float32 F, G and pos_embed failed at the first forward inside an op
    ("lets_core::widen_mix: f_out is torch.float32 ..."), naming neither the part nor the fix."""
    cfg = lets_core.presets.tiny()
    with pytest.raises(ValueError, match=r"mixed dtypes \(learngene: torch.float64; width \(F\), depth \(G\), "
                                         r"pos_embed: torch.float32\).*aux.to\(dtype\)"):
        lets_core.AuxNet(cfg, lets_core.Learngene(cfg.learngene).double())
    x = torch.randn(2, 1, 28, 28)
    for convert in (lambda aux: aux.width.double(), lambda aux: aux.learngene.half()):
        aux = lets_core.AuxNet(cfg)
        convert(aux)
        with pytest.raises(ValueError, match=r"mixed dtypes .*convert the whole Aux-Net with aux.to\(dtype\)"):
            aux(x)
        with pytest.raises(ValueError, match="mixed dtypes"):
            lets_core.emit_des(aux, 3, 6)
    aux = lets_core.AuxNet(cfg, lets_core.Learngene(cfg.learngene)).double()  # the whole module: fine
    assert aux(x.double()).dtype == torch.float64


def test_block_hooks_work_on_des_nets_not_on_the_aux_net():
    """What the README says about hooks: an emitted Des-Net is a timm module with blocks; the
    Aux-Net has none (it generates its weights for each forward), though a hook on it fires."""
    aux = lets_core.AuxNet(lets_core.presets.tiny())
    assert not any(".blocks." in name or name.startswith("blocks") for name, _ in aux.named_modules()
                   if not name.startswith("learngene"))
    des = lets_core.emit_des(aux, 3, 6)
    seen = []
    des.blocks[2].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    x = torch.randn(2, 1, 28, 28)
    des(x)
    assert seen == [(2, 16, 48)]
    assert len(des.forward_intermediates(x, intermediates_only=True)) == 6
    fired = []
    aux.register_forward_hook(lambda module, args, out: fired.append(out.shape))
    aux(x)
    assert fired == [(2, 10)]


@pytest.mark.parametrize("loaded", [False, True])
def test_a_copy_taken_inside_shared_generation_is_an_ordinary_aux_net(loaded, tmp_path):
    """A deepcopy or pickle taken inside the block kept its generated state: the copy's forwards
    reused the original's weights, detached, so training it silently changed nothing (a loaded
    bundle, whose parameters' versions are 0), or each forward raised "changed inside
    aux.shared_generation()" (a built one), though the copy was in no block."""
    import pickle
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny()).eval()
    if loaded:
        aux = lets_core.load_bundle(lets_core.save_bundle(aux, tmp_path / "bundle")).eval()
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([1, 2])
    with aux.shared_generation():
        torch.nn.functional.cross_entropy(aux(x), y).backward()
        copies = [copy.deepcopy(aux), pickle.loads(pickle.dumps(aux))]
        assert aux._shared_state is not None  # the original is still in its block
    with torch.no_grad():
        expected = aux(x)
    for c in copies:
        torch.testing.assert_close(c(x), expected, rtol=0, atol=0)
        before = {n: p.detach().clone() for n, p in c.named_parameters()}
        opt = torch.optim.SGD(c.parameters(), lr=0.1)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(c(x), y).backward()
        opt.step()
        trainable = [n for n, p in c.named_parameters() if p.requires_grad]
        assert trainable and all(c.get_parameter(n).grad is not None for n in trainable)
        assert [n for n in trainable if torch.equal(before[n], c.get_parameter(n))] == []
        with c.shared_generation():  # it is in no block, so it may open its own
            c(x)


def test_assigning_a_learngene_goes_through_the_constructors_checks():
    """``aux.learngene = other`` skipped the constructor's checks: 4 heads of 8 (the shapes of 2 heads
    of 16) ran as 2 heads of 16 without a word, its pos_embed stayed trainable, and a timm ViT
    failed with a bare TypeError."""
    from lets_core.vit import build_vit
    cfg = lets_core.presets.tiny()
    aux = lets_core.AuxNet(cfg)
    original = aux.learngene
    other_heads = lets_core.Learngene(dataclasses.replace(cfg.learngene, head_dim=8))
    with pytest.raises(ValueError, match=r"learngene configuration .*head_dim=8.* differs from the Aux-Net's "
                                         r".*head_dim=16"):
        aux.learngene = other_heads
    vit = build_vit(cfg.learngene, cfg.learngene.embed_dim, cfg.learngene.depth)
    with pytest.raises(TypeError, match=r"learngene must be a lets_core.Learngene, got VisionTransformer .*"
                                        r"Learngene.from_timm"):
        aux.learngene = vit
    with pytest.raises(ValueError, match=r"mixed dtypes \(learngene: torch.float64; .*learngene.to\(torch.float32\)"):
        aux.learngene = lets_core.Learngene(cfg.learngene).double()
    assert aux.learngene is original
    swapped = lets_core.Learngene(cfg.learngene)
    aux.learngene = swapped
    assert aux.learngene is swapped and not swapped.pos_embed.requires_grad
    assert aux.trainable_parameter_count() == lets_core.AuxNet(cfg).trainable_parameter_count()
    assert aux(torch.randn(2, 1, 28, 28)).shape == (2, 10)
