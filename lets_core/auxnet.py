"""The Aux-Net: a ViT whose weights are generated from learngene + F + G at every forward."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.optim.optimizer import register_optimizer_step_pre_hook
from timm.models.vision_transformer import VisionTransformer

from .config import LetsConfig, require_config
from .depth_plan import ordered
from .des_state import des_states
from .generation import WidthFactors, check_one_dtype, generate_state
from .learngene import Learngene
from .ops._registry import autocast_enabled as _autocast_enabled
from .selection import check_strategy, integer_size_pair
from .state_files import unwrapped
from .width_depth import DepthTransform, WidthTransform
from .vit import build_vit, vit_kwargs


# Parameters a bundle holds that no Des-Net is built from (the Aux-Net has its own pos_embed).
UNUSED_BY_DES_NETS = ("learngene.pos_embed",)


class AuxNet(nn.Module):
    """Stage-1 network of LeTs.

    Trainable parameters: the learngene (except its own pos_embed, which the Aux-Net replaces by
    a free (1, N, D) one), the F matrices (``width``), the G coefficients (``depth``) and
    ``pos_embed``. The forward generates every weight once and runs timm's ViT forward on them,
    the same code a Des-Net runs. ``aux(x, des_sizes=[(heads, depth), ...])`` also runs the
    Des-Nets of those sizes from the same generated weights (elastic stage 1).

    A raw ``state_dict`` carries no configuration: ``load_state_dict`` takes, without a word, the
    state of another configuration with the same tensor shapes (e.g. ``head_dim`` 8 instead of 16);
    a bundle carries it, so save and load with :func:`lets_core.save_bundle` / :func:`lets_core.load_bundle`.
    ``torch.jit.trace`` and ``torch.jit.script`` are not supported: use ``torch.export``, or emit a
    full-size Des-Net. Hooks on ``aux.learngene``, ``aux.width`` or ``aux.depth`` never fire (their
    parameters are read, the modules are not called), and the Aux-Net has no gradient checkpointing.

    Example:
        >>> import torch, lets_core
        >>> aux = lets_core.AuxNet(lets_core.presets.tiny())
        >>> aux(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, cfg: LetsConfig, learngene: Learngene | None = None) -> None:
        super().__init__()
        require_config(cfg, LetsConfig, "AuxNet")
        self.cfg = cfg
        # Checked and its pos_embed frozen by __setattr__, as a learngene assigned later is.
        self.learngene = learngene if learngene is not None else Learngene(cfg.learngene)
        self.width = WidthTransform(cfg)
        self.depth = DepthTransform(cfg)
        lg = cfg.learngene
        self.pos_embed = nn.Parameter(torch.empty(1, lg.num_patches, cfg.aux_embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        check_one_dtype({"learngene": self.learngene.parameters(), "width (F), depth (G), pos_embed": [self.pos_embed]},
                        f"pass a learngene of the dtype the new parts are built in ({self.pos_embed.dtype}) and "
                        f"convert the whole Aux-Net afterwards with aux.to(dtype)")
        # The skeleton holds no weights (meta device) and is not a submodule, so it adds nothing
        # to parameters(), state_dict() or .to(); it only provides timm's forward code.
        self._skeleton = build_vit(lg, cfg.aux_embed_dim, cfg.aux_depth, cfg.drop_path_rate, device="meta")
        self._skeleton.train(self.training)
        # Des-Net skeletons of the sizes forward(des_sizes=...) has run, built once per size.
        self._des_skeletons: dict[tuple[int, int], VisionTransformer] = {}
        self._shared_state: dict[str, Tensor] | None = None  # set inside shared_generation()
        # Inside shared_generation(): each parameter and its version counter on entry.
        self._shared_versions: dict[str, tuple[Tensor, int]] = {}
        # The selection strategy an elastic stage 1 trained this Aux-Net's Des-Nets with (None: the
        # paper's stage 1, or not known); train_aux and load_bundle set it, and emission with another
        # strategy warns (lets_core.des.warn_other_strategy).
        self.trained_strategy: str | None = None

    def __setattr__(self, name: str, value: object) -> None:
        if name == "_skeleton":
            object.__setattr__(self, name, value)  # keep it out of nn.Module's registries
        elif name == "learngene":
            self._check_learngene(value)
            super().__setattr__(name, value)
            value.pos_embed.requires_grad_(False)  # unused: the Aux-Net has its own pos_embed
        else:
            super().__setattr__(name, value)

    def _check_learngene(self, learngene: object) -> None:
        """The checks of the constructor's learngene and of one assigned later (``aux.learngene =
        other``): assigned unchecked, a learngene of 4 heads of 8 (the shapes of 2 heads of 16) ran
        as 2 heads of 16 without a word, and a timm ViT failed with a bare TypeError."""
        constructing = "pos_embed" not in self._parameters  # the constructor assigns it before the other parts
        if not isinstance(learngene, Learngene):
            raise TypeError(f"AuxNet's learngene must be a lets_core.Learngene{' or None' if constructing else ''}, "
                            f"got {type(learngene).__name__} (start one from a timm ViT with "
                            f"lets_core.Learngene.from_timm(cfg.learngene, model))")
        if learngene.cfg != self.cfg.learngene:
            raise ValueError(
                f"learngene configuration {learngene.cfg} differs from the Aux-Net's {self.cfg.learngene}"
            )
        if not constructing:  # the constructor checks the dtypes once it has built the other parts
            dtype = self.pos_embed.dtype
            check_one_dtype({"learngene": learngene.parameters(),
                             "width (F), depth (G), pos_embed": [*self.width.parameters(), *self.depth.parameters(),
                                                                 self.pos_embed]},
                            f"assign a learngene of the Aux-Net's dtype ({dtype}): learngene.to({dtype})")

    def __getstate__(self) -> dict:
        # A copy or pickle (deepcopy, torch.save) taken inside shared_generation() is an ordinary
        # Aux-Net outside any block: with the block's state its forwards silently reused the
        # original's generated weights, detached, so training the copy changed nothing.
        return dict(super().__getstate__(), _shared_state=None, _shared_versions={})

    def train(self, mode: bool = True) -> "AuxNet":
        super().train(mode)
        self._skeleton.train(mode)
        for skeleton in self._des_skeletons.values():
            skeleton.train(mode)
        return self

    def no_weight_decay(self) -> set[str]:
        """Parameters spared from weight decay, as the LeTs recipe says (biases, norms, position
        embeddings, G and F): the names timm's ``create_optimizer_v2`` and lets_core's own
        :func:`lets_core.train.param_groups` leave out of decay. Each part names its own
        (:meth:`Learngene.no_weight_decay`, :meth:`WidthTransform.no_weight_decay`, ...)."""
        names = {"pos_embed"}
        for prefix, part in (("learngene", self.learngene), ("width", self.width), ("depth", self.depth)):
            names |= {f"{prefix}.{name}" for name in part.no_weight_decay()}
        return names

    def factors(self) -> WidthFactors:
        """All F rows: the Aux-Net keeps every new neuron."""
        w = self.width
        return WidthFactors(f_e=w.f_e, f_qkv=w.f_qkv, f_ffn=w.f_ffn, f_cls=w.f_cls)

    def generate(self) -> dict[str, Tensor]:
        """The Aux-Net's weights as a timm state dict (tied layers share tensors)."""
        return generate_state(self.cfg, self.learngene, self.factors(), self.depth, self.pos_embed,
                              range(self.cfg.aux_depth))

    def forward(self, x: Tensor, des_sizes: Sequence[tuple[int, int]] | None = None,
                strategy: str = "continuous") -> Tensor | tuple[Tensor, list[Tensor]]:
        """The Aux-Net's logits; with ``des_sizes``, also those of the Des-Nets of these sizes.

        With ``des_sizes`` (a sequence of ``(heads, depth)``) the result is
        ``(aux_logits, [des_logits per size])``, all from ONE generation of the weights; each
        Des-Net is the one ``emit_des(aux, heads, depth, strategy)`` would build, run with
        gradient to the learngene, F, G and pos_embed (see :meth:`des_forward`). ``strategy``
        picks the Des-Nets' neurons only (the Aux-Net keeps all of them); it is checked on every
        call, with or without ``des_sizes``.

        Example:
            >>> import torch, lets_core
            >>> aux = lets_core.AuxNet(lets_core.presets.tiny())
            >>> logits, des = aux(torch.randn(2, 1, 28, 28), des_sizes=[(2, 3), (3, 6)])
            >>> [tuple(t.shape) for t in des]
            [(2, 10), (2, 10)]
        """
        check_strategy(strategy)  # also without des_sizes: a misspelt strategy is not silently ignored
        if self._shared_state is not None:
            self._check_unchanged_since(self._shared_versions)
            state = self._shared_state
        else:
            state = self.generate()  # first: it names mixed dtypes, which _check_input would misreport
        self._check_input(x)
        logits = functional_call(self._skeleton, state, (x,))
        if des_sizes is None:
            return logits
        return logits, self.des_forward(x, state, des_sizes, strategy)

    def des_forward(self, x: Tensor, state: dict[str, Tensor], sizes: Sequence[tuple[int, int]],
                    strategy: str = "continuous") -> list[Tensor]:
        """Logits of the Des-Net of each ``(heads, depth)`` in ``sizes``, taken from ``state``.

        ``state`` is one generated Aux state (:meth:`generate`); each Des state is gathered from
        it with gradient (:func:`lets_core.des_state.des_states`: same selection and automatic
        depth plan as :func:`lets_core.emit_des`) and run by timm's forward on a weightless
        skeleton of that size, in this module's train/eval mode, with drop-path at
        ``cfg.drop_path_rate``.
        """
        # One list of int pairs, read once: a generator would be spent by the gathering and give no
        # logits; a set has an order of its own; 0-d tensors as sizes would each add a skeleton.
        sizes = [integer_size_pair(entry) for entry in ordered(sizes, "des_sizes", "(heads, depth) pairs")]
        states = des_states(self.cfg, self.width, state, sizes, strategy)
        return [functional_call(self._des_skeleton(heads, depth), des, (x,))
                for (heads, depth), des in zip(sizes, states)]

    def _check_input(self, x: Tensor) -> None:
        # timm's own checks answer a wrong size with a bare AssertionError and a 3-D batch with
        # "not enough values to unpack"; name what this Aux-Net takes instead.
        lg = self.cfg.learngene
        expected = (lg.in_chans, lg.img_size, lg.img_size)
        if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else f"a {type(x).__name__}"
            raise ValueError(f"the Aux-Net takes a batch of shape (N, {expected[0]}, {expected[1]}, {expected[2]}) "
                             f"(channels, image size of its configuration), got {got}")
        # Under autocast the patch embedding casts a 16- or 32-bit float batch itself (never float64);
        # otherwise torch would fail with "Input type (double) and bias type (float) should be the same".
        dtype = self.pos_embed.dtype
        cast_by_autocast = x.dtype in (torch.float32, torch.bfloat16, torch.float16) and _autocast_enabled(x.device.type)
        if x.dtype != dtype and not cast_by_autocast:
            hint = ", or run under torch.autocast" if x.dtype in (torch.bfloat16, torch.float16) else ""
            raise ValueError(f"the Aux-Net's weights are {dtype}, so it takes a {dtype} batch, got {x.dtype} "
                             f"(cast it with x.to({dtype}){hint})")

    def _des_skeleton(self, heads: int, depth: int) -> VisionTransformer:
        skeleton = self._des_skeletons.get((heads, depth))
        if skeleton is None:
            lg = self.cfg.learngene
            kwargs = vit_kwargs(lg, heads * lg.head_dim, depth, self.cfg.drop_path_rate)
            # weight_init="skip": timm's random init is slow even on meta tensors, and unused.
            skeleton = VisionTransformer(**kwargs, weight_init="skip", device="meta").train(self.training)
            self._des_skeletons[(heads, depth)] = skeleton
        return skeleton

    @contextmanager
    def shared_generation(self) -> Iterator[None]:
        """Generate the weights once for several forward/backward passes (gradient accumulation).

        Inside the block every forward reuses one generated state whose tensors are detached
        leaves, so each micro-batch's backward stops at the generated weights and accumulates
        their gradients; on a normal exit those gradients go through the generation once. The
        parameters' gradients equal those of running each micro-batch through ``aux(x)``, at one
        generation forward and backward per optimizer step instead of one per micro-batch.

        Step the optimizer (and zero the gradients) AFTER the block, once per block: inside it the
        parameters have no gradient yet (they arrive on exit) and every forward runs the weights
        generated on entry. So an ``optimizer.step()`` over the Aux-Net's parameters inside the
        block, or any in-place change of a parameter there (``load_state_dict``, ``copy_``, ...)
        followed by a forward or by the exit, raises RuntimeError instead of being silently lost.
        A copy or pickle of the Aux-Net taken inside the block is an ordinary Aux-Net outside it.

        Example:
            >>> import torch, lets_core
            >>> aux = lets_core.AuxNet(lets_core.presets.tiny())
            >>> opt = torch.optim.AdamW(aux.parameters(), lr=1e-3)
            >>> with aux.shared_generation():
            ...     for _ in range(2):
            ...         aux(torch.randn(2, 1, 28, 28)).sum().backward()
            >>> aux.width.f_e.grad is not None
            True
            >>> opt.step(); opt.zero_grad()
        """
        if self._shared_state is not None:
            raise RuntimeError("shared_generation() blocks cannot be nested")
        generated = self.generate()
        leaves: dict[int, tuple[Tensor, Tensor]] = {}  # id(generated tensor) -> (generated, leaf)
        for t in generated.values():
            if id(t) not in leaves:  # tied layers share one tensor, hence one leaf
                leaves[id(t)] = (t, t.detach().requires_grad_(t.requires_grad))
        recorded = {name: (p, p._version) for name, p in self.named_parameters()}
        own = {id(p) for p in self.parameters()}

        def refuse_step(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
            # A step inside the block found no gradient on the parameters and changed nothing.
            if any(id(p) in own for group in optimizer.param_groups for p in group["params"]):
                raise RuntimeError(f"{type(optimizer).__name__}.step() was called inside aux.shared_generation(): the "
                                   f"Aux-Net's gradients only reach its parameters when the block exits, so this step "
                                   f"would change nothing; call optimizer.step() after the block")

        step_hook = register_optimizer_step_pre_hook(refuse_step)
        self._shared_state = {k: leaves[id(t)][1] for k, t in generated.items()}
        self._shared_versions = recorded
        try:
            yield
        finally:
            self._shared_state, self._shared_versions = None, {}
            step_hook.remove()
        pairs = [(t, leaf.grad) for t, leaf in leaves.values() if t.requires_grad and leaf.grad is not None]
        if pairs:
            # The backward through the generation reads the parameters as they were on entry.
            self._check_unchanged_since(recorded)
            torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])

    def _check_unchanged_since(self, recorded: dict[str, tuple[Tensor, int]]) -> None:
        """Refuse parameters changed (in place or replaced) since shared_generation() recorded them:
        the block's forwards run the weights generated on entry and its backward differentiates
        them, so the change would be silently ignored or break autograd with a generic message."""
        changed = [name for name, p in self.named_parameters()
                   if name not in recorded or recorded[name][0] is not p or recorded[name][1] != p._version]
        if changed:
            names = ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")
            raise RuntimeError(f"parameters of the Aux-Net changed inside aux.shared_generation() ({names}): the "
                               f"block generated its weights once on entry and would keep using the old ones. Change "
                               f"parameters (optimizer.step(), load_state_dict, in-place edits) after the block; it "
                               f"applies the accumulated gradients to the parameters on exit")

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def stored_parameter_count(self) -> int:
        """What LeTs stores to make every size (the paper's Table 2): the learngene, F, G and the Aux
        pos_embed, whatever their ``requires_grad`` (freezing some to tune the others changes what
        is trained, not what is stored); the learngene's own position embedding, which the bundle
        file also holds but no Des-Net uses, is left out."""
        return sum(p.numel() for name, p in self.named_parameters() if name not in UNUSED_BY_DES_NETS)


def as_aux_net(value: object, caller: str) -> AuxNet:
    """``value`` as the AuxNet inside torch.compile's, DDP's and DataParallel's wrappers, which run
    and save that very module; a TypeError naming what was passed and what ``caller`` needs otherwise.

    An averaged copy (timm's ModelEmaV3, torch's AveragedModel) is refused, not unwrapped: it is
    another model beside the trained one, and whether to use the average or the live weights is the
    caller's to say; ``ema.module`` says it in one attribute.
    """
    aux = unwrapped(value) if isinstance(value, nn.Module) else value
    if isinstance(aux, AuxNet):
        return aux
    hint = ""
    if isinstance(getattr(aux, "module", None), AuxNet):
        hint = "; to use the averaged weights of an EMA copy such as timm's ModelEmaV3, pass its .module"
    elif isinstance(aux, LetsConfig):
        hint = "; build one with lets_core.AuxNet(cfg) or load a trained one with lets_core.load_bundle"
    raise TypeError(f"{caller} needs an AuxNet, got {type(value).__name__}{hint}")
