"""LeTs(LiGO), the ordering ablation (TransformConfig.layout "ligo", compare method ``lets-ligo``):
the generated Aux weights against an independent float64 computation of "depth mix over all
learngene blocks first, then one width expansion per distinct Aux layer", gradients, parameter
counts, selection, errors, bundles, checkpoints and ``lets compare`` end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn
from train_helpers import fake_fashion_mnist, quick_recipe, small_splits

import lets_core
from lets_core import presets
from lets_core.baselines import METHODS, SOURCE_DIR, get_method, load_source
from lets_core.baselines import ligo
from lets_core.compare import CompareConfig
from lets_core.config import G_MODULE_TYPES
from lets_core.errors import LetsConfigError
from lets_core.train import train_aux
from lets_core.train.checkpoint import CheckpointError

TINY = presets.tiny()
LIGO = presets.ligo(TINY)


def _randomized(cfg, seed=0, dtype=torch.float32) -> lets_core.AuxNet:
    """An Aux-Net with distinct random values everywhere (timm zeroes biases, which would hide the
    bias coefficients of G)."""
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg).to(dtype)
    with torch.no_grad():
        for p in aux.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return aux


def _x(n=2):
    return torch.randn(n, 1, 28, 28)


# The defining property ----------------------------------------------------------------------------
def _expand(f):
    """E(F) = [I; F] as an explicit matrix."""
    return torch.cat([torch.eye(f.shape[1], dtype=f.dtype), f])


@pytest.mark.parametrize("tie_length", [2, 1])
def test_aux_layer_is_the_widening_of_its_mix_over_all_learngene_blocks(tie_length):
    cfg = presets.ligo(dataclasses.replace(TINY, transform=dataclasses.replace(TINY.transform,
                                                                               tie_length=tie_length)))
    aux = _randomized(cfg, dtype=torch.float64)
    state = aux.generate()
    lg, w, g = aux.learngene, aux.width, aux.depth.g.detach()
    d = cfg.learngene.embed_dim
    e_res = _expand(w.f_e.detach())
    assert w.f_qkv.shape[0] == w.f_ffn.shape[0] == cfg.aux_depth // tie_length  # one F set per distinct layer
    assert g.shape == (len(G_MODULE_TYPES), 2, cfg.aux_depth // tie_length, cfg.learngene.depth)  # dense

    def mix(name, kind, row, stack, rows=None):
        """Sum over ALL learngene blocks j of G[type, kind, row, j] * stack[j] (rows: a q|k|v slice)."""
        stack = stack.detach() if rows is None else stack.detach()[:, rows]
        coeff = g[G_MODULE_TYPES.index(name), kind, row]
        return sum(coeff[j] * stack[j] for j in range(cfg.learngene.depth))

    for layer in range(cfg.aux_depth):
        r = layer // tie_length
        f_q, f_k, f_v = (_expand(f) for f in w.f_qkv[r].detach())
        f_ffn = _expand(w.f_ffn[r].detach())
        expected = {}
        for name, key in (("norm1", "norm1"), ("norm2", "norm2")):
            expected[f"{key}.weight"] = e_res @ mix(name, 0, r, lg.blocks[f"{name}_w"])
            expected[f"{key}.bias"] = e_res @ mix(name, 1, r, lg.blocks[f"{name}_b"])
        qkv_w, qkv_b = [], []
        for c, (name, f) in enumerate(zip("qkv", (f_q, f_k, f_v))):
            rows = slice(c * d, (c + 1) * d)
            qkv_w.append(f @ mix(name, 0, r, lg.blocks["qkv_w"], rows) @ e_res.T)
            qkv_b.append(f @ mix(name, 1, r, lg.blocks["qkv_b"], rows))
        expected["attn.qkv.weight"], expected["attn.qkv.bias"] = torch.cat(qkv_w), torch.cat(qkv_b)
        expected["attn.proj.weight"] = e_res @ mix("proj", 0, r, lg.blocks["proj_w"]) @ f_v.T
        expected["attn.proj.bias"] = e_res @ mix("proj", 1, r, lg.blocks["proj_b"])
        expected["mlp.fc1.weight"] = f_ffn @ mix("fc1", 0, r, lg.blocks["fc1_w"]) @ e_res.T
        expected["mlp.fc1.bias"] = f_ffn @ mix("fc1", 1, r, lg.blocks["fc1_b"])
        expected["mlp.fc2.weight"] = e_res @ mix("fc2", 0, r, lg.blocks["fc2_w"]) @ f_ffn.T
        expected["mlp.fc2.bias"] = e_res @ mix("fc2", 1, r, lg.blocks["fc2_b"])
        for key, value in expected.items():
            torch.testing.assert_close(state[f"blocks.{layer}.{key}"], value, rtol=1e-10, atol=1e-10,
                                       msg=lambda m: f"Aux layer {layer} {key}: {m}")
    # Outside the blocks the layouts agree: F_e widens the stem and fc_norm, F_cls the head.
    torch.testing.assert_close(state["fc_norm.weight"], e_res @ lg.fc_norm_w.detach())
    torch.testing.assert_close(state["head.weight"], lg.head_w.detach() @ _expand(w.f_cls.detach()).T)


def test_ligo_and_lets_differ_only_in_the_order():
    """A ligo Aux-Net and a one-group lets Aux-Net share every tensor shape, and with Δ = 0 (no
    widening) the order cannot matter: the same parameters give the same network."""
    narrow = dataclasses.replace(TINY, aux_embed_dim=TINY.learngene.embed_dim)
    one_group = dataclasses.replace(narrow, transform=dataclasses.replace(narrow.transform, group_size=4))
    lets_aux, ligo_aux = _randomized(one_group, dtype=torch.float64), lets_core.AuxNet(presets.ligo(narrow)).double()
    ligo_aux.load_state_dict(lets_aux.state_dict())
    x = _x().double()
    torch.testing.assert_close(ligo_aux(x), lets_aux(x))
    # With new neurons the orders differ (F set j of a block is not F set r of a layer).
    lets_aux, ligo_aux = _randomized(dataclasses.replace(TINY, transform=dataclasses.replace(
        TINY.transform, group_size=4))), lets_core.AuxNet(LIGO)
    ligo_aux.load_state_dict(lets_aux.state_dict())
    assert not torch.allclose(ligo_aux(x.float()), lets_aux(x.float()))


def test_gradients_reach_every_learngene_tensor_and_every_f_and_g_entry():
    aux = _randomized(LIGO).train()
    aux(_x(3)).square().sum().backward()
    for name, p in aux.named_parameters():
        if name == "learngene.pos_embed":  # frozen: the Aux-Net has its own pos_embed
            assert p.grad is None
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in aux.learngene.blocks.items():  # every block feeds every Aux layer
        assert (p.grad.flatten(1).abs().sum(1) > 0).all(), name
    assert (aux.depth.g.grad != 0).all()  # dense G: every coefficient of every row
    for f in (aux.width.f_qkv, aux.width.f_ffn):  # every F set (one per distinct Aux layer)
        assert (f.grad.flatten(1).abs().sum(1) > 0).all()


def test_generation_gradcheck_float64():
    """The ligo path composes group_mix and widen (each gradchecked in the ops tests); check the
    composition on a micro configuration, through learngene, F and G."""
    cfg = presets.ligo(lets_core.LetsConfig(
        learngene=lets_core.LearngeneConfig(img_size=4, patch_size=4, in_chans=1, num_classes=2, embed_dim=4,
                                            depth=2, head_dim=2, mlp_ratio=1.0),
        aux_embed_dim=6, aux_depth=2, transform=lets_core.TransformConfig(group_size=2, tie_length=1)))
    aux = _randomized(cfg, dtype=torch.float64)
    names = ("learngene.blocks.qkv_w", "learngene.blocks.fc1_b", "learngene.blocks.norm2_w", "width.f_qkv",
             "width.f_ffn", "depth.g")
    params = dict(aux.named_parameters())

    class Generate(nn.Module):  # functional_call swaps the parameters for a forward call only
        def __init__(self) -> None:
            super().__init__()
            self.aux = aux

        def forward(self):
            return self.aux.generate()

    def generated(*tensors):
        state = torch.func.functional_call(Generate(), {f"aux.{n}": t for n, t in zip(names, tensors)}, ())
        return tuple(state[f"blocks.1.{k}"] for k in ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.bias",
                                                          "mlp.fc2.weight", "norm2.weight"))

    assert torch.autograd.gradcheck(generated, tuple(params[n].detach().requires_grad_() for n in names))


# Parameter counts and storage ---------------------------------------------------------------------
def _transform_count(cfg) -> tuple[int, int]:
    """(F, G) parameter counts written out from the layout description."""
    lg = cfg.learngene
    d, delta, r = lg.embed_dim, cfg.delta, lg.mlp_ratio
    rows = cfg.aux_depth // cfg.transform.tie_length
    f_sets = rows if cfg.transform.layout == "ligo" else lg.depth
    per_set = 3 * delta * d + int(r * delta) * int(r * d)
    mixed = lg.depth if cfg.transform.layout == "ligo" else cfg.transform.group_size
    return 2 * delta * d + f_sets * per_set, 8 * 2 * rows * mixed


@pytest.mark.parametrize("base", ["tiny", "paper"])
def test_parameter_counts_and_storage_report(base):
    cfg = getattr(presets, base)()
    counts = {}
    for layout_cfg in (cfg, presets.ligo(cfg)):
        with torch.device("meta"):
            aux = lets_core.AuxNet(layout_cfg)
        f_count, g_count = _transform_count(layout_cfg)
        assert sum(p.numel() for p in aux.width.parameters()) == f_count
        assert aux.depth.g.numel() == g_count
        lg = aux.learngene
        learngene = sum(p.numel() for p in lg.parameters()) - lg.pos_embed.numel()
        report = lets_core.storage_report(aux, [(layout_cfg.aux_heads, layout_cfg.aux_depth)])
        assert report.bundle_params == learngene + f_count + g_count + aux.pos_embed.numel()
        counts[layout_cfg.transform.layout] = report.bundle_params
    if base == "paper":  # the spec's LeTs count; LiGO: 8 F sets either way, G 1,024 instead of 256
        assert counts == {"lets": 37_735_784, "ligo": 37_735_784 - 256 + 1024}
    else:
        assert counts == {"lets": 68_042, "ligo": 68_042 - 128 + 256}


# Emission -----------------------------------------------------------------------------------------
def test_des_net_with_everything_selected_is_the_aux_net_and_every_emission_path_agrees():
    aux = _randomized(LIGO).eval()
    x = _x()
    for strategy in lets_core.STRATEGIES:
        full = lets_core.emit_des(aux, LIGO.aux_heads, plan=list(range(LIGO.aux_depth)), strategy=strategy)
        torch.testing.assert_close(full(x), aux(x))
    for strategy in ("continuous", "top-l2"):
        one = [lets_core.emit_des(aux, h, l, strategy=strategy)(x) for h, l in ((2, 3), (3, 6))]
        many = [m(x) for m in lets_core.emit_des_many(aux, [(2, 3), (3, 6)], strategy=strategy)]
        _, elastic = aux(x, des_sizes=[(2, 3), (3, 6)], strategy=strategy)  # gathered with gradient
        for a, b, c in zip(one, many, elastic):
            torch.testing.assert_close(a, b)
            torch.testing.assert_close(a, c)


def test_norm_selection_ranks_each_distinct_aux_layer_by_its_own_f_set():
    """A selection unit is one distinct Aux layer: its heads and MLP neurons are ranked by the
    rows of its own F set, and the Des layer is that sub-tensor of the Aux layer."""
    aux = _randomized(LIGO)
    hd, d, heads = LIGO.learngene.head_dim, LIGO.learngene.embed_dim, 3
    sel = lets_core.selection.select_width(LIGO, aux.width, heads * hd - d, "top-l2")
    assert len(sel.heads) == len(sel.mlp) == LIGO.num_rows
    f_qkv, f_ffn = aux.width.f_qkv.detach(), aux.width.f_ffn.detach()
    picks = []
    for r in range(LIGO.num_rows):
        head_norms = f_qkv[r].reshape(3, -1, hd, d).square().sum(dim=(0, 2, 3))
        picks.append(head_norms.topk(heads - d // hd).indices.sort().values)
        assert torch.equal(sel.heads[r], picks[-1]), r
        mlp_norms = f_ffn[r].square().sum(1)
        assert torch.equal(sel.mlp[r], mlp_norms.topk(len(sel.mlp[r])).indices.sort().values), r
    assert len({tuple(p.tolist()) for p in picks}) > 1  # the random F sets rank differently
    des = lets_core.emit_des(aux, heads, plan=[5], strategy="top-l2")
    keep = torch.cat([torch.arange(d), d + (picks[5 // 2][:, None] * hd + torch.arange(hd)).flatten()])
    res = torch.cat([torch.arange(d), d + sel.residual])
    full = aux.generate()["blocks.5.attn.proj.weight"].detach()
    torch.testing.assert_close(des.blocks[0].attn.proj.weight, full[res][:, keep])


# Errors -------------------------------------------------------------------------------------------
def test_bad_layout_values_are_named():
    with pytest.raises(LetsConfigError, match=r"TransformConfig.layout must be one of \['lets', 'ligo'\], got 'LiGO'"):
        lets_core.TransformConfig(layout="LiGO")
    with pytest.raises(LetsConfigError, match="layout must be one of .* got None"):
        lets_core.LetsConfig.from_dict({**TINY.to_dict(), "transform": {**TINY.to_dict()["transform"], "layout": None}})
    with pytest.raises(LetsConfigError, match="group_size must be the learngene depth 4, got 2"):
        dataclasses.replace(TINY, transform=dataclasses.replace(TINY.transform, layout="ligo"))
    with pytest.raises(ValueError, match="lets-ligo"):
        CompareConfig(methods=["lets-lig0"])
    assert get_method("ligo") is METHODS["lets-ligo"]
    assert CompareConfig(methods=["ligo", "lets"]).methods == ["lets-ligo", "lets"]
    with pytest.raises(lets_core.DesSizeError, match=r"\[2, 4\]"):
        METHODS["lets-ligo"].check_size(TINY, 5, 4)
    assert METHODS["lets-ligo"].supports(TINY, 2, 11)


def test_configuration_round_trips_with_its_layout():
    assert lets_core.LetsConfig.from_json(LIGO.to_json()) == LIGO
    assert json.loads(LIGO.to_json())["transform"]["layout"] == "ligo"
    legacy = TINY.to_dict()
    del legacy["transform"]["layout"]  # written before the option existed
    assert lets_core.LetsConfig.from_dict(legacy) == TINY


# Bundles, checkpoints, sources --------------------------------------------------------------------
def test_bundle_round_trip_and_layout_edit_is_refused(tmp_path):
    aux = _randomized(LIGO).eval()
    lets_core.save_bundle(aux, tmp_path / "b")
    loaded = lets_core.load_bundle(tmp_path / "b")
    assert loaded.cfg == LIGO
    x = _x()
    torch.testing.assert_close(loaded(x), aux(x), rtol=0, atol=0)
    meta_path = tmp_path / "b" / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["transform"]["layout"] = "lets"  # same shapes, another network
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(lets_core.BundleError, match="changed after saving"):
        lets_core.load_bundle(tmp_path / "b")


def _teacher():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def test_train_aux_resume_across_layouts_is_refused(tmp_path):
    splits = small_splits(tmp_path, n_train=48)
    recipe = quick_recipe(epochs=1, alpha=0.0)
    train_aux(LIGO, splits, recipe, tmp_path / "run")
    assert lets_core.load_bundle(tmp_path / "run" / "bundle").cfg == LIGO
    one_group = dataclasses.replace(TINY, transform=dataclasses.replace(TINY.transform, group_size=4))
    with pytest.raises(CheckpointError, match="'aux-ligo' model; this run trains a 'aux'"):
        train_aux(one_group, splits, quick_recipe(epochs=2, alpha=0.0), tmp_path / "run", resume=True)


def test_stage1_source_saves_loads_emits_and_resumes(tmp_path):
    splits = small_splits(tmp_path, n_train=48)
    method, recipe = METHODS["lets-ligo"], quick_recipe(epochs=1, alpha=1.0)
    source = method.train_stage1(splits, _teacher(), TINY, recipe, tmp_path / "s")
    assert source.method == "lets-ligo" and source.cfg == LIGO and len(source.history) == 1
    with torch.device("meta"):
        expected = lets_core.AuxNet(LIGO).trainable_parameter_count()
    assert source.stored_parameters == expected
    loaded = load_source(tmp_path / "s" / SOURCE_DIR)
    x = _x()
    for heads, depth in ((2, 4), (4, 8), (3, 11)):
        a, b = method.emit(loaded, heads, depth).eval(), method.emit(source, heads, depth).eval()
        assert (a.embed_dim, len(a.blocks)) == (heads * LIGO.learngene.head_dim, depth)
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    # The Des-Net is emit_des's from the trained Aux-Net.
    aux = ligo.aux_net(loaded).eval()
    torch.testing.assert_close(method.emit(loaded, 3, 6)(x), lets_core.emit_des(aux, 3, 6)(x), rtol=0, atol=0)
    again = method.train_stage1(splits, _teacher(), TINY, recipe, tmp_path / "s", resume=True)
    assert all(torch.equal(again.state[k], source.state[k].cpu()) for k in source.state)
    with pytest.raises(lets_core.BundleError, match="layout 'lets'"):
        ligo.aux_net(dataclasses.replace(source, cfg=TINY))


def test_lets_compare_quick_runs_lets_ligo_end_to_end(tmp_path, monkeypatch, capsys):
    from lets_core import cli

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no re-execution of the test process
    data = fake_fashion_mnist(tmp_path / "fm", n_train=280)  # --quick holds out 200 for validation
    out = tmp_path / "cmp"
    code = cli.main(["compare", "--quick", "--dataset", "fashion-mnist", "--data-dir", str(data), "--methods",
                     "lets-ligo", "--sizes", "2x4", "--tune-epochs", "0,1", "--train-limit", "64",
                     "--batch-size", "32", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "compare.json").read_text())
    assert list(report["methods"]) == ["lets-ligo"] and list(report["results"]) == ["2x4"]
    assert report["methods"]["lets-ligo"]["stored_parameters"] == 68_042 - 128 + 256
    assert set(report["results"]["2x4"]["lets-ligo"]["top1_by_epochs"]) == {"0", "1"}
    assert "| H2-L4 | lets-ligo |" in capsys.readouterr().out
