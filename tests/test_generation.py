"""Weight generation (lets_core/generation.py) against a literal reading of the specification's
formulas, module by module (core_helpers.spec_layer)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lets_core

from core_helpers import continuous_keep, small_configs, spec_layer

SETTINGS = settings(max_examples=15, deadline=None)


@SETTINGS
@given(cfg=small_configs(allow_zero_delta=False), seed=st.integers(0, 2**16), data=st.data())
def test_generation_matches_spec_formulas(cfg, seed, data):
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg)
    heads = data.draw(st.integers(cfg.learngene.num_heads, cfg.aux_heads))
    plan = data.draw(st.lists(st.integers(0, cfg.aux_depth - 1), min_size=1, max_size=4))
    des = lets_core.emit_des(aux, heads=heads, plan=plan, strategy="continuous")
    state = des.state_dict()
    keep = continuous_keep(cfg, heads)
    for i, aux_layer in enumerate(plan):
        for key, value in spec_layer(aux, aux_layer, *keep).items():
            torch.testing.assert_close(state[f"blocks.{i}.{key}"], value, rtol=1e-5, atol=1e-6)


def test_emission_under_autocast_keeps_full_precision_weights():
    """emit_des and emit_des_many inside an autocast region stored bf16-rounded weights in a float32
    Des-Net (every qkv entry bf16-representable, up to 0.6% off), for good."""
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny()).eval()
    reference = lets_core.emit_des(aux, 3, 6).state_dict()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        one = lets_core.emit_des(aux, 3, 6).state_dict()
        many = lets_core.emit_des_many(aux, [(3, 6)])[0].state_dict()
    for state in (one, many):
        assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_a_float64_aux_net_is_not_rounded_by_autocast():
    """The op boundary cast float64 inputs to the autocast dtype; torch's autocast leaves float64 alone."""
    torch.manual_seed(0)
    aux = lets_core.AuxNet(lets_core.presets.tiny()).double().eval()
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        plain = aux(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under = aux(x)
    assert under.dtype == torch.float64
    torch.testing.assert_close(under, plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transform", ["jvp", "jacfwd", "forward_ad"])
def test_forward_mode_ad_is_refused_not_zero(transform):
    """Forward-mode AD through the ops returned zero tangents (0 where finite differences give 0.42)."""
    import torch.autograd.forward_ad as fwAD

    generate = _Generate(lets_core.AuxNet(lets_core.presets.tiny()))
    f_e = generate.aux.width.f_e.detach()

    def qkv(f):  # block 0's generated qkv weight as a function of F_e
        return torch.func.functional_call(generate, {"aux.width.f_e": f}, (), strict=False)

    with pytest.raises(NotImplementedError, match="forward-mode AD .* is not supported"):
        if transform == "jvp":
            torch.func.jvp(qkv, (f_e,), (torch.ones_like(f_e),))
        elif transform == "jacfwd":
            torch.func.jacfwd(qkv)(f_e)
        else:
            with fwAD.dual_level():
                qkv(fwAD.make_dual(f_e, torch.ones_like(f_e)))
    f = f_e.clone().requires_grad_(True)
    assert torch.autograd.grad(qkv(f).sum(), f)[0].abs().sum() > 0  # reverse mode works


@pytest.mark.parametrize("transform", ["grad", "vmap_grad", "vjp", "jacrev"])
def test_torch_func_reverse_mode_is_refused_by_name(transform):
    """torch.func.grad, vmap(grad) (per-sample gradients), vjp and jacrev failed inside an op with
    torch's "autograd.Function ... must override the setup_context staticmethod", naming no fix."""
    generate = _Generate(lets_core.AuxNet(lets_core.presets.tiny()))
    f_e = generate.aux.width.f_e.detach()

    def qkv(f):
        return torch.func.functional_call(generate, {"aux.width.f_e": f}, (), strict=False)

    with pytest.raises(NotImplementedError, match=r"torch.func's gradient transforms .* not supported .*use "
                                                  r"loss.backward\(\) or torch.autograd.grad; or emit a Des-Net"):
        if transform == "grad":
            torch.func.grad(lambda f: qkv(f).sum())(f_e)
        elif transform == "vmap_grad":
            torch.func.vmap(torch.func.grad(lambda f: qkv(f).sum()))(torch.stack([f_e, f_e]))
        elif transform == "vjp":
            torch.func.vjp(qkv, f_e)
        else:
            torch.func.jacrev(qkv)(f_e)


# torch has no batching rule for CPU flash attention and says so; the result is what is checked.
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_torch_func_that_does_not_differentiate_the_generation_still_works():
    """The reverse-mode refusal leaves alone what worked: a forward-only torch.vmap ensemble of
    Aux-Nets over stacked parameters, and a torch.func.grad that runs an Aux-Net without
    differentiating its parameters (a teacher under no_grad, a gradient with respect to the input)."""
    from torch.func import functional_call, stack_module_state
    torch.manual_seed(0)
    nets = [lets_core.AuxNet(lets_core.presets.tiny()).eval() for _ in range(2)]
    params, buffers = stack_module_state(nets)
    x = torch.randn(2, 1, 28, 28)
    out = torch.vmap(lambda p, b: functional_call(nets[0], (p, b), (x,)))(params, buffers)
    for i, net in enumerate(nets):
        torch.testing.assert_close(out[i], net(x), rtol=1e-5, atol=1e-5)

    def distill(w):
        with torch.no_grad():
            teacher = nets[0](x)
        return (w * teacher).sum()

    torch.testing.assert_close(torch.func.grad(distill)(torch.ones(2, 10)), nets[0](x).detach())
    aux = nets[1]
    by_input = torch.func.grad(lambda inputs: aux(inputs).sum())(x)
    torch.testing.assert_close(by_input, torch.autograd.grad(aux(x.requires_grad_()).sum(), x)[0])


class _Generate(torch.nn.Module):
    """The Aux-Net's generated block-0 qkv weight as a module's output (functional_call swaps F)."""

    def __init__(self, aux):
        super().__init__()
        self.aux = aux

    def forward(self):
        return self.aux.generate()["blocks.0.attn.qkv.weight"]
