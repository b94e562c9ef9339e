"""Elastic stage 1: Des-Nets trained from the Aux-Net's generated weights, the size sampler, the
objective, its settings in checkpoints and bundles, and exact resume."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from timm.models.vision_transformer import VisionTransformer
from torch.func import functional_call
from train_helpers import quick_recipe, small_splits

import lets_core
from lets_core.elastic import ElasticConfig, ElasticObjective, SizeSampler
from lets_core.generation import generate_state
from lets_core.selection import check_width, select_width, selected_factors
from lets_core.train import CHECKPOINT_FILE, CheckpointError, DistillationLoss, TrainConfig, fit, kd_loss, train_aux
from lets_core.train.stages import aux_origin
from lets_core.vit import vit_kwargs

from core_helpers import small_configs

TINY = lets_core.presets.tiny()  # heads in [2, 4], learngene depth 4, Aux depth 8


def _x(cfg, n=3, dtype=torch.float32):
    lg = cfg.learngene
    return torch.randn(n, lg.in_chans, lg.img_size, lg.img_size, dtype=dtype)


def _trainable(aux):
    return {n: p for n, p in aux.named_parameters() if p.requires_grad}


def _spread_(aux):
    """Random F rows of very different norms, so norm strategies pick non-prefix neurons."""
    with torch.no_grad():
        for f in aux.width.parameters():
            f.mul_(torch.rand_like(f) * 4)


# The differentiable Des forward ------------------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(cfg=small_configs(allow_zero_delta=False), strategy=st.sampled_from(lets_core.STRATEGIES),
       seed=st.integers(0, 2**16), data=st.data())
def test_des_forward_equals_emit_des(cfg, strategy, seed, data):
    torch.manual_seed(seed)
    aux = lets_core.AuxNet(cfg).eval()
    _spread_(aux)
    sizes = data.draw(st.lists(st.tuples(st.integers(cfg.learngene.num_heads, cfg.aux_heads),
                                         st.integers(1, 2 * cfg.aux_depth)), min_size=1, max_size=3))
    x = _x(cfg)
    with torch.no_grad():
        logits, des = aux(x, des_sizes=sizes, strategy=strategy)
        torch.testing.assert_close(logits, aux(x), rtol=0, atol=0)
        for (heads, depth), got in zip(sizes, des):
            expected = lets_core.emit_des(aux, heads, depth, strategy)(x)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=f"{heads}x{depth} {strategy}")


def _reference_logits(aux, x, heads, depth, strategy):
    """emit_des's path (selected F rows through generate_state) with gradient enabled."""
    cfg, lg = aux.cfg, aux.cfg.learngene
    sel = select_width(cfg, aux.width, check_width(cfg, heads), strategy)
    cols = torch.cat([torch.arange(lg.embed_dim), lg.embed_dim + sel.residual])
    state = generate_state(cfg, aux.learngene, selected_factors(cfg, aux.width, sel), aux.depth,
                           aux.pos_embed.index_select(2, cols), lets_core.auto_depth_plan(cfg, depth))
    skeleton = VisionTransformer(**vit_kwargs(lg, heads * lg.head_dim, depth), weight_init="skip", device="meta")
    return functional_call(skeleton.eval(), state, (x,))


@pytest.mark.parametrize("strategy", lets_core.STRATEGIES)
def test_des_gradients_equal_those_of_the_emission_path(strategy):
    torch.manual_seed(1)
    aux = lets_core.AuxNet(TINY).double().eval()
    _spread_(aux)
    x = _x(TINY, dtype=torch.float64)
    params = _trainable(aux)
    for heads, depth in [(3, 5), (4, 2), (2, 11)]:
        probe = torch.randn(x.shape[0], TINY.learngene.num_classes, dtype=torch.float64)
        (got,) = aux.des_forward(x, aux.generate(), [(heads, depth)], strategy)
        want = _reference_logits(aux, x, heads, depth, strategy)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
        got_grads = torch.autograd.grad((got * probe).sum(), list(params.values()), allow_unused=True)
        want_grads = torch.autograd.grad((want * probe).sum(), list(params.values()), allow_unused=True)
        for name, g, w in zip(params, got_grads, want_grads):
            g = torch.zeros_like(params[name]) if g is None else g
            w = torch.zeros_like(params[name]) if w is None else w
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11, msg=f"{name} {heads}x{depth}")


def test_des_terms_alone_reach_every_learngene_tensor_f_g_and_pos_embed():
    torch.manual_seed(2)
    aux = lets_core.AuxNet(TINY)
    x = _x(TINY)
    _, des = aux(x, des_sizes=[(3, 5), (4, 3)])
    target = torch.randn(x.shape[0], 10)
    sum(kd_loss(d, target) for d in des).backward()
    params = _trainable(aux)
    assert {"width.f_e", "width.f_qkv", "width.f_ffn", "width.f_cls", "depth.g", "pos_embed"} <= set(params)
    assert sum(n.startswith("learngene.") for n in params) == len(list(aux.learngene.parameters())) - 1
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_skeletons_follow_train_mode_and_drop_path():
    cfg = dataclasses.replace(TINY, drop_path_rate=0.5)
    torch.manual_seed(3)
    aux = lets_core.AuxNet(cfg)
    x = _x(cfg)
    with torch.no_grad():
        first, second = (aux(x, des_sizes=[(3, 6)])[1][0] for _ in range(2))
        assert not torch.equal(first, second)  # drop-path is active in train mode
        skeleton = aux._des_skeletons[(3, 6)]
        assert skeleton.blocks[-1].drop_path1.drop_prob == pytest.approx(0.5)
        aux.eval()
        assert not skeleton.training and not skeleton.blocks[0].training
        torch.testing.assert_close(aux(x, des_sizes=[(3, 6)])[1][0], lets_core.emit_des(aux, 3, 6)(x))
        aux.train()
    assert skeleton.blocks[0].training


def test_forward_without_sizes_is_unchanged_and_with_sizes_works_in_shared_generation():
    torch.manual_seed(4)
    aux = lets_core.AuxNet(TINY)
    twin = copy.deepcopy(aux)
    x = _x(TINY)
    plain = aux(x)
    assert isinstance(plain, torch.Tensor)
    assert torch.equal(plain, functional_call(aux._skeleton, aux.generate(), (x,)))
    logits, des = aux(x, des_sizes=[])
    assert torch.equal(logits, plain) and des == []

    batches = [(_x(TINY), torch.randint(0, 10, (3,))) for _ in range(2)]
    sizes = [(2, 4), (3, 7)]

    def loss(model, x, y):
        logits, des = model(x, des_sizes=sizes, strategy="top-l1")
        return torch.nn.functional.cross_entropy(logits, y) + sum(kd_loss(d, logits.detach()) for d in des)

    for x, y in batches:
        loss(aux, x, y).backward()
    with twin.shared_generation():
        for x, y in batches:
            loss(twin, x, y).backward()
    for name, p in _trainable(twin).items():
        torch.testing.assert_close(p.grad, dict(aux.named_parameters())[name].grad, rtol=1e-4, atol=1e-6, msg=name)


def test_des_sizes_are_read_once_in_order_and_sets_are_refused():
    torch.manual_seed(5)
    aux = lets_core.AuxNet(TINY)
    x = _x(TINY)
    sizes = [(2, 4), (3, 7)]
    _, expected = aux(x, des_sizes=sizes)
    # A generator was spent by the gathering, which left no logits at all.
    _, from_generator = aux(x, des_sizes=(size for size in sizes))
    assert len(from_generator) == 2
    for got, want in zip(from_generator, expected):
        assert torch.equal(got, want)
    with pytest.raises(lets_core.DesSizeError, match="des_sizes must be an ordered sequence.*got set"):
        aux(x, des_sizes=set(sizes))
    # 0-d tensors and numpy integers are the sizes they hold: one skeleton per size, not per call.
    aux(x, des_sizes=[(torch.tensor(2), torch.tensor(4))])
    aux(x, des_sizes=[(np.int64(2), np.int64(4))])
    assert set(aux._des_skeletons) == {(2, 4), (3, 7)}
    with pytest.raises(lets_core.DesSizeError, match="pair of integers"):
        aux(x, des_sizes=[(2.5, 4)])


# The sampler -------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(-2**40, 2**40), epoch=st.integers(0, 1000), step=st.integers(0, 10**6),
       k=st.integers(0, 4), min_heads=st.integers(2, 4), depths=st.tuples(st.integers(1, 12), st.integers(0, 6)))
def test_sampler_is_deterministic_sandwiched_and_in_bounds(seed, epoch, step, k, min_heads, depths):
    min_depth, extra = depths
    sampler = ElasticConfig(num_random=k, min_heads=min_heads, min_depth=min_depth,
                            max_depth=min_depth + extra).sampler(TINY)
    rng = torch.get_rng_state()
    sizes = sampler.sizes(seed, epoch, step)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is left alone
    assert sizes == sampler.sizes(seed, epoch, step)
    assert len(sizes) == k + 1 and sizes[0] == (min_heads, min_depth)
    for heads, depth in sizes:
        assert min_heads <= heads <= TINY.aux_heads and min_depth <= depth <= min_depth + extra


@pytest.mark.parametrize("args, message", [
    ((3, 2, 1, 4, 1), r"ranges must not be empty: heads \[3, 2\]"),
    ((2, 4, 5, 4, 1), r"depths \[5, 4\]"),
    ((2, 4, 1, 4, -1), "num_random >= 0; got num_random=-1"),
    ((0, 4, 1, 4, 1), "got min_heads=0"),
    ((2, 4, 1.5, 4, 1), "got min_depth=1.5"),
])
def test_a_sampler_built_directly_is_checked(args, message):
    with pytest.raises(lets_core.LetsConfigError, match=message):
        SizeSampler(*args)
    assert SizeSampler(np.int64(2), 4, 1, 4, 0).min_heads.__class__ is int


@pytest.mark.parametrize("settings, fields", [
    (dict(num_random=-1), ("num_random",)),
    (dict(min_heads=0), ("min_heads",)),
    (dict(min_heads=9), ("min_heads",)),  # refused by the sampler: TINY emits 2 to 4 heads
    (dict(min_depth=1.5), ("min_depth",)),
    (dict(max_depth=1), ("min_depth", "max_depth")),  # below the default min_depth, the learngene depth 4
    (dict(min_depth=6, max_depth=5), ("min_depth", "max_depth")),
    (dict(target="student"), ("target",)),
    (dict(weight=0), ("weight",)),
    (dict(strategy="top-L2"), ("strategy",)),
])
def test_each_refused_elastic_setting_names_its_fields(settings, fields):
    """`lets train-aux` names the --elastic-* flags of an error from these fields, not from its text."""
    with pytest.raises(ValueError) as refused:
        ElasticConfig(**settings).sampler(TINY)
    assert refused.value.fields == fields


def test_sampler_defaults_cover_the_grid_and_depend_on_every_coordinate():
    sampler = ElasticConfig(num_random=2).sampler(TINY)
    assert sampler == SizeSampler(min_heads=2, max_heads=4, min_depth=4, max_depth=8, num_random=2)
    drawn = {size for step in range(300) for size in sampler.sizes(0, 0, step)[1:]}
    assert drawn == {(h, d) for h in range(2, 5) for d in range(4, 9)}
    base = sampler.sizes(0, 0, 0)
    others = [sampler.sizes(1, 0, 0), sampler.sizes(0, 1, 0), sampler.sizes(0, 0, 1)]
    assert sum(o != base for o in others) >= 2  # 1 in 15^2 chance per pair to agree; seeds are fixed
    assert ElasticConfig(num_random=0).sampler(TINY).sizes(5, 6, 7) == [(2, 4)]


# Configuration ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(target="student"), r"target must be one of \['teacher', 'aux', 'both'\], got 'student'"),
    (dict(num_random=-1), r"num_random must be an integer >= 0, got -1"),
    (dict(num_random=1.5), r"num_random must be an integer >= 0, got 1.5"),
    (dict(weight=float("nan")), r"weight must be a finite number > 0, got nan"),
    (dict(weight=math.inf), r"weight must be a finite number > 0, got inf"),
    (dict(weight=0), r"weight must be a finite number > 0, got 0"),
    (dict(min_heads=0), r"min_heads must be None or an integer >= 1, got 0"),
    (dict(min_depth=5, max_depth=3), r"min_depth 5 must be <= max_depth 3"),
    (dict(strategy="top-l3"), r"strategy must be one of \[.*'continuous'.*\], got 'top-l3'"),
])
def test_config_errors_name_the_value(kwargs, message):
    with pytest.raises(lets_core.LetsConfigError, match=message):
        ElasticConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_heads=1), r"min_heads=1 cannot be emitted .* \[2, 4\]"),
    (dict(min_heads=5), r"min_heads=5 cannot be emitted .* \[2, 4\]"),
    (dict(min_depth=9), r"min_depth 9 > max_depth 8 .*Aux depth 8"),
    (dict(max_depth=3), r"min_depth 4 > max_depth 3 .*learngene depth 4"),
])
def test_sizes_the_configuration_cannot_emit_are_refused(kwargs, message):
    with pytest.raises(lets_core.DesSizeError, match=message):
        ElasticConfig(**kwargs).sampler(TINY)


def test_numpy_integers_are_sizes_and_stored_as_ints():
    """ElasticConfig(min_heads=np.int64(2)) was refused, while emit_des takes numpy integers."""
    import numpy as np
    config = ElasticConfig(num_random=np.int64(2), min_heads=np.int64(2), min_depth=np.int32(4),
                           max_depth=torch.tensor(6), weight=np.float32(0.5))
    assert config == ElasticConfig(num_random=2, min_heads=2, min_depth=4, max_depth=6, weight=0.5)
    assert all(type(v) is int for v in (config.num_random, config.min_heads, config.min_depth, config.max_depth))
    assert json.loads(json.dumps(config.to_dict()))["min_heads"] == 2  # a checkpoint's settings hold it
    for bad in (dict(min_heads=True), dict(num_random=np.bool_(True)), dict(min_depth=np.float64(4.0)),
                dict(max_depth=torch.tensor(6.0))):
        with pytest.raises(lets_core.LetsConfigError, match="must be"):
            ElasticConfig(**bad)


def test_config_round_trips_and_rejects_unknown_keys():
    config = ElasticConfig(num_random=3, min_heads=3, target="both", weight=0.5, strategy="top-l2")
    assert ElasticConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(lets_core.LetsConfigError, match=r"unknown keys \['k'\] in ElasticConfig"):
        ElasticConfig.from_dict({"k": 1})


# The objective ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["teacher", "aux", "both"])
def test_objective_is_aux_loss_plus_weighted_mean_des_kd(target):
    torch.manual_seed(5)
    aux = lets_core.AuxNet(TINY)  # drop_path 0: train-mode forwards are deterministic
    train_cfg = TrainConfig(alpha=0.5, tau=2.0, seed=7)
    objective = ElasticObjective(ElasticConfig(num_random=2, target=target, weight=0.3), TINY, train_cfg)
    x, y, teacher = _x(TINY), torch.randint(0, 10, (3,)), torch.randn(3, 10)
    loss, logits = objective(aux, x, y, teacher, epoch=2, step=3)

    sizes = objective.sampler.sizes(7, 2, 3)
    aux_logits, des = aux(x, des_sizes=sizes)
    targets = {"teacher": [teacher], "aux": [aux_logits.detach()], "both": [teacher, aux_logits.detach()]}[target]
    des_losses = [sum(kd_loss(d, t, 2.0) for t in targets) / len(targets) for d in des]
    expected = DistillationLoss(0.5, 2.0)(aux_logits, y, teacher) + 0.3 * sum(des_losses) / len(des_losses)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, aux_logits)


def test_objective_teacher_needs_and_settings():
    plain = TrainConfig(alpha=0.0)
    assert ElasticObjective(ElasticConfig(target="aux"), TINY, plain).teacher_reason is None
    assert ElasticObjective(ElasticConfig(target="aux"), TINY, TrainConfig(alpha=1.0)).teacher_reason == "alpha=1.0"
    both = ElasticObjective(ElasticConfig(target="both"), TINY, plain)
    assert both.teacher_reason == "elastic target 'both'"
    assert both.settings() == {"objective": "elastic", **ElasticConfig(target="both").to_dict()}
    with pytest.raises(ValueError, match="elastic target 'both' needs teacher logits"):
        both(lets_core.AuxNet(TINY), _x(TINY), torch.zeros(3, dtype=torch.long), None, 0, 0)


def test_fit_refuses_an_objective_built_from_another_train_config(tmp_path):
    splits = small_splits(tmp_path)
    recipe = quick_recipe(epochs=1, alpha=0.0)
    elastic = ElasticConfig(target="aux")
    for field, value in (("tau", 3.0), ("seed", 7), ("label_smoothing", 0.1), ("alpha", 0.5)):
        other = dataclasses.replace(recipe, **{field: value})
        objective = ElasticObjective(elastic, TINY, other)
        with pytest.raises(ValueError, match=rf"another TrainConfig .*\({field}: objective {value!r} vs fit "):
            fit(lets_core.AuxNet(TINY), splits, recipe, kind="aux", out_dir=tmp_path / field, objective=objective,
                origin=aux_origin(TINY))
        assert not (tmp_path / field / CHECKPOINT_FILE).exists()
    # Fields the loss does not read may differ (the objective built from a default TrainConfig's alpha 0).
    same_loss = dataclasses.replace(recipe, epochs=5, lr=1.0)
    fit(lets_core.AuxNet(TINY), splits, recipe, kind="aux", out_dir=tmp_path / "ok",
        objective=ElasticObjective(elastic, TINY, same_loss), origin=aux_origin(TINY))


# Training, checkpoints, resume, bundle ------------------------------------------------------------
def test_elastic_resume_is_exact_and_other_settings_are_refused(tmp_path):
    splits = small_splits(tmp_path)
    cfg = dataclasses.replace(TINY, drop_path_rate=0.1)  # drop-path draws from the global RNG
    recipe = quick_recipe(epochs=2, alpha=0.5, tau=2.0)
    elastic = ElasticConfig(num_random=1, target="both", weight=0.5, strategy="top-l1")
    torch.manual_seed(123)
    teacher = lets_core.train.build_teacher(num_classes=10, in_chans=1, img_size=28).eval()

    full = train_aux(cfg, splits, recipe, tmp_path / "full", teacher=teacher, elastic=elastic)

    def stop(epoch, step):
        if epoch == 1:
            raise KeyboardInterrupt

    torch.manual_seed(recipe.seed)  # what train_aux does before building the Aux-Net
    with pytest.raises(KeyboardInterrupt):
        fit(lets_core.AuxNet(cfg), splits, recipe, kind="aux", teacher=teacher, out_dir=tmp_path / "cut",
            on_step=stop, objective=ElasticObjective(elastic, cfg, recipe), origin=aux_origin(cfg))
    torch.manual_seed(999)
    resumed = train_aux(cfg, splits, recipe, tmp_path / "cut", teacher=teacher, elastic=elastic, resume=True)

    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    paper = train_aux(cfg, splits, dataclasses.replace(recipe, epochs=1), tmp_path / "paper", teacher=teacher)
    assert not torch.equal(paper.model.width.f_e, resumed.model.width.f_e)  # (the Des terms do train)

    # Emission knows the strategy the Des-Nets were trained with: the default "continuous" on this
    # top-l1 Aux-Net kept other neurons without a word.
    assert full.model.trained_strategy == "top-l1" and paper.model.trained_strategy is None
    loaded = lets_core.load_bundle(tmp_path / "full" / "bundle")
    assert loaded.trained_strategy == "top-l1"
    with pytest.warns(lets_core.StrategyWarning, match="emit_des: .* strategy 'top-l1'; emitting with 'continuous'"):
        lets_core.emit_des(loaded, 3, 6)
    with pytest.warns(lets_core.StrategyWarning, match="emit_des_many: .* emitting with 'top-l2'"):
        lets_core.emit_des_many(copy.deepcopy(loaded), [(3, 6)], strategy="top-l2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lets_core.emit_des(loaded, 3, 6, strategy="top-l1")
        lets_core.emit_des(lets_core.load_bundle(tmp_path / "paper" / "bundle"), 3, 6)

    meta = json.loads((tmp_path / "full" / "bundle" / "bundle.json").read_text())
    assert meta["training"] == {"elastic": elastic.to_dict()}
    assert torch.equal(lets_core.load_bundle(tmp_path / "full" / "bundle").width.f_e, full.model.width.f_e)
    assert "training" not in json.loads((tmp_path / "paper" / "bundle" / "bundle.json").read_text())

    # The defaults spelled out (learngene heads 2 and depth 4, Aux depth 8) sample the same sizes:
    # resumed, where "min_heads: checkpoint None vs now 2" was refused. The run is complete, so the
    # resume trains nothing and returns the same weights.
    spelled = dataclasses.replace(elastic, min_heads=2, min_depth=4, max_depth=8)
    again = train_aux(cfg, splits, recipe, tmp_path / "cut", teacher=teacher, elastic=spelled, resume=True)
    assert torch.equal(again.model.width.f_e, resumed.model.width.f_e)
    with pytest.raises(CheckpointError, match=r"objective changed \(.*min_heads: checkpoint None vs now 3"):
        train_aux(cfg, splits, recipe, tmp_path / "cut", teacher=teacher,
                  elastic=dataclasses.replace(elastic, min_heads=3), resume=True)
    other = dataclasses.replace(elastic, num_random=2)
    with pytest.raises(CheckpointError, match=r"objective changed \(.*num_random: checkpoint 1 vs now 2"):
        train_aux(cfg, splits, recipe, tmp_path / "cut", teacher=teacher, elastic=other, resume=True)
    with pytest.raises(CheckpointError, match=r"objective changed \(checkpoint \{'objective': 'elastic'.* vs now "
                                              r"the default objective"):
        train_aux(cfg, splits, recipe, tmp_path / "cut", teacher=teacher, resume=True)
    with pytest.raises(CheckpointError, match=r"checkpoint the default objective .* vs now \{'objective': 'elastic'"):
        train_aux(cfg, splits, dataclasses.replace(recipe, epochs=1), tmp_path / "paper", teacher=teacher,
                  elastic=elastic, resume=True)


def test_train_aux_checks_elastic_sizes_and_teacher_before_training(tmp_path):
    splits = small_splits(tmp_path)
    with pytest.raises(lets_core.DesSizeError, match="min_heads=9"):
        train_aux(TINY, splits, quick_recipe(epochs=1), tmp_path / "a", elastic=ElasticConfig(min_heads=9))
    with pytest.raises(ValueError, match="elastic target 'teacher' distills from a teacher, but none was given"):
        train_aux(TINY, splits, quick_recipe(epochs=1), tmp_path / "b", elastic=ElasticConfig())
    assert not (tmp_path / "a" / CHECKPOINT_FILE).exists() and not (tmp_path / "b" / CHECKPOINT_FILE).exists()
