"""Baselines (lets_core.baselines): each initialization's defining property, checked against index
sets and formulas written out here independently of the implementation; every emitted model's
shape and forward; gradients of every stage-1 model; stage 1 end to end with save/load."""

from __future__ import annotations

import dataclasses

import numpy as np

import pytest
import torch
from torch import nn
from train_helpers import quick_recipe, small_splits

import lets_core
from lets_core.baselines import METHODS, SOURCE_DIR, Source, get_method, load_source, save_source
from lets_core.baselines import ligo, nested, pre_fin, sws, tleg, weight_selection
from lets_core.baselines.source import detached
from lets_core.des import MODEL_ARGS_ATTR
from lets_core.errors import DesSizeError
from lets_core.input_norm import InputNorm, recorded_input_norm
from lets_core.train import DistillationLoss, DistillationObjective, finetune
from lets_core.train.stages import scratch_des
from lets_core.vit import build_vit, vit_kwargs

TINY = lets_core.presets.tiny()  # head_dim 16, MLP ratio 2; Aux-shaped: 64 wide (4 heads), 8 blocks
D, L, HD, H = TINY.aux_embed_dim, TINY.aux_depth, TINY.learngene.head_dim, TINY.aux_heads


def _x(n=3):
    return torch.randn(n, 1, 28, 28)


def _randomize_(module: nn.Module) -> None:
    """Distinct random values everywhere (timm zeroes biases, sets LayerNorms to 1)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.1)


def _plain_source(name: str, seed: int = 0) -> Source:
    torch.manual_seed(seed)
    vit = build_vit(TINY.learngene, D, L)
    _randomize_(vit)
    return Source(name, TINY, detached(vit.state_dict()))


def _module_source(name: str, model: nn.Module, settings=None) -> Source:
    _randomize_(model)
    prefix = nested.VIT_PREFIX if name == "nested" else ""
    return Source(name, TINY, detached(model.state_dict(), prefix), settings or {})


def _fresh_source(name: str) -> Source:
    """An untrained source of each method, built as its stage 1 builds it (no training)."""
    torch.manual_seed(0)
    if name in ("imwlm", "nested"):
        return _plain_source(name)
    if name == "tleg":
        return _module_source(name, tleg.TlegNet(TINY))
    if name == "sws":
        return _module_source(name, sws.SwsNet(TINY), {"split": sws.default_split(L)})
    if name == "lets-ligo":
        aux = lets_core.AuxNet(lets_core.presets.ligo(TINY))
        _randomize_(aux)
        return Source(name, aux.cfg, ligo.stored_state(aux))
    if name == "pre-fin":
        model = scratch_des(TINY, 3, 6)
        return Source(name, TINY, {f"3x6.{k}": v for k, v in detached(model.state_dict()).items()}, {"sizes": [[3, 6]]})
    return Source(name, TINY, {}, {"seed": 0})


def _heads_rows(heads):
    return [h * HD + i for h in heads for i in range(HD)]


def _plan_tie1(depth):
    tie1 = dataclasses.replace(TINY, transform=dataclasses.replace(TINY.transform, tie_length=1))
    return lets_core.auto_depth_plan(tie1, depth)


# Registry -----------------------------------------------------------------------------------------
def test_registry_names_and_aliases():
    assert sorted(METHODS) == ["imwlm", "lets-ligo", "nested", "pre-fin", "scratch", "sws", "tleg"]
    assert get_method("weight-selection") is METHODS["imwlm"] and get_method("pre_fin") is METHODS["pre-fin"]
    for m in METHODS.values():
        assert m.description and m.sizes
    with pytest.raises(KeyError, match="known"):
        get_method("nope")
    assert METHODS["tleg"].supports(TINY, H, 3) and not METHODS["tleg"].supports(TINY, 2, 3)
    assert METHODS["imwlm"].supports(TINY, 1, 20) and not METHODS["imwlm"].supports(TINY, H + 1, 3)


# Every emitted model -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(METHODS))
def test_emitted_models_have_the_requested_shape_and_run(name):
    source = _fresh_source(name)
    if name in ("tleg", "sws"):
        sizes = [(H, 3), (H, 8), (H, 11)]
    else:
        sizes = [(3, 6)] if name == "pre-fin" else [(2, 4), (3, 6), (4, 8), (2, 10)]
    for heads, depth in sizes:
        model = METHODS[name].emit(source, heads, depth, drop_path_rate=0.1)
        assert (model.embed_dim, len(model.blocks), model.blocks[0].attn.num_heads) == (heads * HD, depth, heads)
        assert getattr(model, MODEL_ARGS_ATTR) == vit_kwargs(TINY.learngene, heads * HD, depth, 0.1)
        assert model(_x(2)).shape == (2, 10)
        params = [p.data_ptr() for p in model.parameters()]
        assert len(params) == len(set(params)), "emitted layers must not share storage (they are tuned apart)"
    # numpy integers are sizes, as for emit_des (weight selection and the nested ViT refused them)
    heads, depth = sizes[0]
    assert len(METHODS[name].emit(source, np.int64(heads), np.int64(depth)).blocks) == depth


def test_emitted_model_fine_tunes_and_saves_like_a_des_net(tmp_path):
    splits = small_splits(tmp_path)
    model = METHODS["sws"].emit(_fresh_source("sws"), H, 5)
    result = finetune(model, splits, quick_recipe(epochs=1), tmp_path / "tune")
    reloaded = lets_core.load_des(tmp_path / "tune" / "model")
    x = _x()
    torch.testing.assert_close(reloaded(x), result.model.eval()(x))


def test_depth_only_methods_reject_other_widths_with_the_width_they_make():
    for name in ("tleg", "sws"):
        with pytest.raises(DesSizeError, match=f"{H} heads \\(width {D}\\)"):
            METHODS[name].emit(_fresh_source(name), 2, 4)
    with pytest.raises(DesSizeError, match=r"\[1, 4\]"):
        METHODS["imwlm"].emit(_fresh_source("imwlm"), 5, 4)
    with pytest.raises(DesSizeError, match="no pre-trained 2x4"):
        METHODS["pre-fin"].emit(_fresh_source("pre-fin"), 2, 4)


# Weight selection (IMwLM) -------------------------------------------------------------------------
def test_uniform_element_selection_is_every_kth_or_evenly_spaced():
    assert weight_selection.element_indices(8, 4).tolist() == [0, 2, 4, 6]  # every (N/n)-th, as the paper
    assert weight_selection.element_indices(4, 3).tolist() == [0, 1, 2]  # floor(k N / n)
    assert weight_selection.element_indices(128, 96).tolist()[:4] == [0, 1, 2, 4]
    assert weight_selection.element_indices(8, 3, "first").tolist() == [0, 1, 2]


@pytest.mark.parametrize("rule", weight_selection.ELEMENT_RULES)
@pytest.mark.parametrize("heads,depth", [(2, 4), (3, 6), (1, 11)])
def test_weight_selection_tensors_are_sub_tensors_at_the_documented_indices(rule, heads, depth):
    source = _plain_source("imwlm")
    big = source.state
    des = weight_selection.emit(source, heads, depth, rule=rule).state_dict()
    width, hidden = heads * HD, 2 * heads * HD

    def pick(n, k):  # written out: evenly spaced floor(i n / k), or the first k
        return list(range(k)) if rule == "first" else [i * n // k for i in range(k)]

    res, kept_heads, mlp = pick(D, width), pick(H, heads), pick(2 * D, hidden)
    attn = _heads_rows(kept_heads)
    qkv = attn + [D + r for r in attn] + [2 * D + r for r in attn]
    plan = _plan_tie1(depth)
    assert torch.equal(des["pos_embed"], big["pos_embed"][:, :, res])
    assert torch.equal(des["patch_embed.proj.weight"], big["patch_embed.proj.weight"][res])
    assert torch.equal(des["head.weight"], big["head.weight"][:, res])
    assert torch.equal(des["head.bias"], big["head.bias"])
    assert torch.equal(des["fc_norm.bias"], big["fc_norm.bias"][res])
    for j, i in enumerate(plan):
        b, s = f"blocks.{i}.", f"blocks.{j}."
        assert torch.equal(des[s + "norm1.weight"], big[b + "norm1.weight"][res])
        assert torch.equal(des[s + "attn.qkv.weight"], big[b + "attn.qkv.weight"][qkv][:, res])
        assert torch.equal(des[s + "attn.qkv.bias"], big[b + "attn.qkv.bias"][qkv])
        assert torch.equal(des[s + "attn.proj.weight"], big[b + "attn.proj.weight"][res][:, attn])
        assert torch.equal(des[s + "mlp.fc1.weight"], big[b + "mlp.fc1.weight"][mlp][:, res])
        assert torch.equal(des[s + "mlp.fc2.weight"], big[b + "mlp.fc2.weight"][res][:, mlp])
        assert torch.equal(des[s + "mlp.fc2.bias"], big[b + "mlp.fc2.bias"][res])


def test_weight_selection_layers_follow_the_lets_plan_with_tie_length_1():
    assert weight_selection.selection(TINY, 2, 4).plan == [0, 2, 5, 7]  # fewer: evenly spaced, ends kept
    assert weight_selection.selection(TINY, 2, 10).plan == [0, 1, 2, 3, 3, 4, 4, 5, 6, 7]  # extras to the middle


def test_weight_selection_of_the_whole_model_is_the_model():
    source = _plain_source("imwlm")
    vit = build_vit(TINY.learngene, D, L).eval()
    vit.load_state_dict(source.state)
    x = _x()
    torch.testing.assert_close(weight_selection.emit(source, H, L)(x), vit(x), rtol=0, atol=0)


# TLEG -----------------------------------------------------------------------------------------------
def _theta(source, which):
    return {k[len(which):]: v for k, v in source.state.items() if k.startswith(which)}


@pytest.mark.parametrize("depth", [1, 5, 8, 13])
def test_tleg_layer_l_is_theta_a_plus_l_minus_1_over_L_theta_b(depth):
    source = _fresh_source("tleg")
    a, b = _theta(source, "theta_a."), _theta(source, "theta_b.")
    assert set(a) == set(b) and len(a) == 12  # every tensor of a block: LayerNorms, qkv, proj, fc1, fc2
    des = tleg.emit(source, H, depth).state_dict()
    for l in range(1, depth + 1):  # 1-based, as the paper writes it
        for name in a:
            expected = a[name] + ((l - 1) / depth) * b[name]
            assert torch.equal(des[f"blocks.{l - 1}.{name}"], expected), (l, name)
    if depth > 2:  # linear in position: equal steps of theta_b / L
        step1 = des["blocks.1.mlp.fc1.weight"] - des["blocks.0.mlp.fc1.weight"]
        step2 = des[f"blocks.{depth - 1}.mlp.fc1.weight"] - des[f"blocks.{depth - 2}.mlp.fc1.weight"]
        torch.testing.assert_close(step1, step2)
        torch.testing.assert_close(step1, b["mlp.fc1.weight"] / depth)


def test_tleg_aux_net_is_the_expansion_at_the_aux_depth():
    torch.manual_seed(0)
    net = tleg.TlegNet(TINY)
    _randomize_(net)
    net.eval()
    state = net.timm_state()
    a, b = dict(net.theta_a.named_parameters()), dict(net.theta_b.named_parameters())
    for i in range(L):
        assert torch.equal(state[f"blocks.{i}.attn.qkv.weight"], a["attn.qkv.weight"] + (i / L) * b["attn.qkv.weight"])
    source = Source("tleg", TINY, detached(net.state_dict()))
    x = _x()
    torch.testing.assert_close(tleg.emit(source, H, L)(x), net(x), rtol=0, atol=0)


def test_tleg_theta_b_starts_with_zero_norms_and_biases():
    torch.manual_seed(0)
    b = dict(tleg.TlegNet(TINY).theta_b.named_parameters())
    assert all(torch.count_nonzero(t) == 0 for n, t in b.items() if n.endswith("bias") or "norm" in n)
    assert all(t.std() > 0 for n, t in b.items() if n.endswith("weight") and t.ndim == 2)


# SWS ------------------------------------------------------------------------------------------------
def test_sws_default_split_is_the_papers_for_16_layers():
    assert sws.default_split(16) == [3, 3, 4, 3, 3]
    assert sws.default_split(8) == [1, 2, 2, 2, 1]
    assert sws.default_split(3) == [1, 1, 1]
    assert sws.default_split(12, num_stages=4) == [3, 3, 3, 3]


@pytest.mark.parametrize("split", [[3, 3, 4, 3, 3], [1, 2, 2, 2, 1], [2, 5, 1]])
def test_sws_des_stage_counts(split):
    total, stages = sum(split), len(split)
    assert sws.des_stage_counts(split, total) == split  # the Aux depth gives the Aux-Net's own split
    for depth in range(1, 3 * total):
        counts = sws.des_stage_counts(split, depth)
        assert sum(counts) == depth
        if depth >= stages:
            assert all(c >= 1 for c in counts)
            assert all(abs(c - depth * n / total) < 1 or c == 1 for c, n in zip(counts, split))
        else:
            assert counts[0] == counts[-1] == 1 or depth == 1
    assert sws.des_stage_counts([3, 3, 4, 3, 3], 12) == [2, 3, 3, 2, 2]
    assert sws.des_stage_counts([3, 3, 4, 3, 3], 3) == [1, 0, 1, 0, 1]


def test_sws_layers_of_a_stage_share_weights_and_des_nets_repeat_them_in_stage_order():
    torch.manual_seed(0)
    net = sws.SwsNet(TINY, [2, 3, 3])
    _randomize_(net)
    state = net.timm_state()
    stage_of = [0, 0, 1, 1, 1, 2, 2, 2]
    for i in range(L):
        for j in range(L):
            same = torch.equal(state[f"blocks.{i}.mlp.fc1.weight"], state[f"blocks.{j}.mlp.fc1.weight"])
            assert same == (stage_of[i] == stage_of[j]), (i, j)
    plain = build_vit(TINY.learngene, D, L)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in plain.parameters())
    source = Source("sws", TINY, detached(net.state_dict()), {"split": [2, 3, 3]})
    for depth in (3, 5, 8, 12):
        counts = sws.des_stage_counts([2, 3, 3], depth)
        des = sws.emit(source, H, depth).state_dict()
        layer = 0
        for s, n in enumerate(counts):
            stage = dict(net.stages[s].named_parameters())
            for _ in range(n):
                for name, t in stage.items():
                    assert torch.equal(des[f"blocks.{layer}.{name}"], t), (depth, layer, name)
                layer += 1
        assert layer == depth
    x = _x()
    net.eval()
    torch.testing.assert_close(sws.emit(source, H, L)(x), net(x), rtol=0, atol=0)


# Nested ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("heads,depth", [(2, 4), (3, 6), (4, 8)])
def test_nested_prefix_equals_parent_weights(heads, depth):
    source = _fresh_source("nested")
    big, des = source.state, nested.emit(source, heads, depth).state_dict()
    w, m = heads * HD, 2 * heads * HD
    rows = list(range(w)) + list(range(D, D + w)) + list(range(2 * D, 2 * D + w))
    assert torch.equal(des["pos_embed"], big["pos_embed"][..., :w])
    assert torch.equal(des["head.weight"], big["head.weight"][:, :w])
    for j, i in enumerate(_plan_tie1(depth)):
        b, s = f"blocks.{i}.", f"blocks.{j}."
        assert torch.equal(des[s + "attn.qkv.weight"], big[b + "attn.qkv.weight"][rows, :w])
        assert torch.equal(des[s + "attn.proj.weight"], big[b + "attn.proj.weight"][:w, :w])
        assert torch.equal(des[s + "mlp.fc1.weight"], big[b + "mlp.fc1.weight"][:m, :w])
        assert torch.equal(des[s + "mlp.fc2.weight"], big[b + "mlp.fc2.weight"][:w, :m])
        assert torch.equal(des[s + "norm2.bias"], big[b + "norm2.bias"][:w])


def test_nested_prefix_forward_equals_the_emitted_model():
    torch.manual_seed(0)
    model = nested.NestedViT(TINY)
    _randomize_(model)
    model.eval()
    source = Source("nested", TINY, detached(model.state_dict(), nested.VIT_PREFIX))
    sizes = [(2, 4), (3, 6), (4, 8), (2, 11)]
    x = _x()
    with torch.no_grad():
        logits, subs = model(x, sizes=sizes)
        torch.testing.assert_close(logits, model.vit(x), rtol=0, atol=0)
        for (h, d), got in zip(sizes, subs):
            torch.testing.assert_close(got, nested.emit(source, h, d)(x), rtol=1e-6, atol=1e-6)


def test_nested_prefix_loss_trains_only_the_prefix():
    torch.manual_seed(0)
    model = nested.NestedViT(TINY)
    _, (sub,) = model(_x(), sizes=[(2, 8)])
    sub.square().sum().backward()
    g = {n: p.grad for n, p in model.vit.named_parameters()}
    w, m = 2 * HD, 4 * HD
    assert g["blocks.0.mlp.fc1.weight"][:m, :w].abs().sum() > 0
    assert g["blocks.0.mlp.fc1.weight"][m:].abs().sum() == 0 and g["blocks.0.mlp.fc1.weight"][:, w:].abs().sum() == 0
    assert g["blocks.0.attn.qkv.weight"][w:D].abs().sum() == 0 and g["head.weight"][:, w:].abs().sum() == 0


def test_nested_objective_samples_the_sandwich_sizes_and_distills_every_prefix():
    objective = nested.NestedObjective(nested.NestedConfig(num_random=2), TINY, quick_recipe(alpha=1.0))
    sizes = objective.sampler.sizes(0, 0, 0)
    assert sizes[0] == (TINY.learngene.num_heads, TINY.learngene.depth) and len(sizes) == 3
    assert objective.teacher_reason is not None
    torch.manual_seed(0)
    model = nested.NestedViT(TINY)
    loss, logits = objective(model, _x(4), torch.arange(4), torch.randn(4, 10), 0, 0)
    assert loss.ndim == 0 and torch.isfinite(loss) and logits.shape == (4, 10)
    with pytest.raises(lets_core.LetsConfigError, match="target"):
        nested.NestedConfig(target="aux")


# Stage 1: gradients and end to end -----------------------------------------------------------------
def _stage1_model_and_objective(name):
    torch.manual_seed(0)
    recipe = quick_recipe(alpha=1.0)
    default = DistillationObjective(DistillationLoss(1.0))
    if name == "imwlm":
        return build_vit(TINY.learngene, D, L), default
    if name == "tleg":
        return tleg.TlegNet(TINY), default
    if name == "sws":
        return sws.SwsNet(TINY), default
    return nested.NestedViT(TINY), nested.NestedObjective(nested.NestedConfig(), TINY, recipe)


@pytest.mark.parametrize("name", ["imwlm", "tleg", "sws", "nested"])
def test_a_stage1_step_reaches_every_parameter(name):
    model, objective = _stage1_model_and_objective(name)
    model.train()
    loss, _ = objective(model, _x(4), torch.arange(4), torch.randn(4, 10), 0, 0)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def _teacher():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


@pytest.mark.parametrize("name", ["imwlm", "tleg", "sws", "nested", "pre-fin", "scratch"])
def test_train_stage1_saves_a_source_that_emits_the_same_model(tmp_path, name):
    splits = small_splits(tmp_path)
    method, recipe = METHODS[name], quick_recipe(epochs=1, alpha=1.0)
    out = tmp_path / name
    source = method.train_stage1(splits, _teacher(), TINY, recipe, out, sizes=[(2, 4)])
    assert source.method == name and source.cfg == TINY
    if name != "scratch":
        assert len(source.history) == 1 and source.stored_parameters > 0
    loaded = load_source(out / SOURCE_DIR)
    assert loaded.settings == source.settings and set(loaded.state) == set(source.state)
    heads, depth = (H, 5) if name in ("tleg", "sws") else (2, 4)
    x = _x()
    torch.testing.assert_close(method.emit(loaded, heads, depth).eval()(x), method.emit(source, heads, depth).eval()(x),
                               rtol=0, atol=0)
    # What stage 1 trained with is kept, and its Des-Nets inherit it (scratch trains nothing).
    expected = None if name == "scratch" else InputNorm.of(splits)
    assert source.input_norm == expected and loaded.input_norm == expected
    assert recorded_input_norm(method.emit(loaded, heads, depth)) == expected
    if name in ("tleg", "imwlm"):  # a finished run resumes to the same source without training
        again = method.train_stage1(splits, _teacher(), TINY, recipe, out, resume=True)
        assert all(torch.equal(again.state[k], source.state[k].cpu()) for k in source.state)


def test_source_round_trip_and_damage_detection(tmp_path):
    source = _fresh_source("sws")
    source.history = [{"epoch": 1, "train_loss": 1.0}]
    save_source(source, tmp_path / "s")
    loaded = load_source(tmp_path / "s")
    assert loaded.method == "sws" and loaded.cfg == TINY and loaded.history == source.history
    assert all(torch.equal(loaded.state[k], v) for k, v in source.state.items())
    text = (tmp_path / "s" / "source.json").read_text().replace('"split": [\n', '"split": [\n      9,\n', 1)
    (tmp_path / "s" / "source.json").write_text(text)
    with pytest.raises(lets_core.BundleError, match="changed after saving"):
        load_source(tmp_path / "s")


def test_pre_fin_needs_its_sizes():
    with pytest.raises(DesSizeError, match="one model per Des size"):
        pre_fin.train_stage1(None, None, TINY, quick_recipe())
