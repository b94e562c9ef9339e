"""The Aux-Net's generation, forward and backward, replayed as CUDA graphs: a measurement of how
much of the generation step's time on a GPU is the host issuing ops rather than the GPU running
them.

The 2026-11-27 H100 run timed the tiny preset's generation step (negligible GPU work) at 16.6 ms
and the paper configuration's at 15.2 ms, whose matrix products alone take about 4.4 ms on that
GPU: the step looked bound by the host's ~250 op launches and the autograd graph around them, not
by the GPU. A CUDA graph replays the same kernels without the host, so the graphed step's time is
the generation's device-bound floor. ``bench_ops.py`` (ways ``compiled-graph`` and
``fallback-graph``) and ``bench_train_step.py`` (variant ``lets-graph``) time it beside the eager
step. This is a benchmark, not yet a library feature: it has not run on a GPU as of this file's
writing (no GPU was lent to the session that wrote it), and ``check_graphed_matches`` is how a run
proves it computes what the eager generation computes before any time is taken.

torch.cuda.make_graphed_callables captures the forward and the backward of a module with no
inputs; its parameters (the learngene, F, G, pos_embed) are the graphs' static inputs, so an
optimizer that updates them in place is seen by the next replay.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

import lets_core


class GenerationOutputs(nn.Module):
    """``aux.generate()`` as a module with no inputs that returns a tuple of distinct tensors
    (tied layers share one tensor in the state dict; a graph's outputs must be distinct), and
    :meth:`as_state`, which turns such a tuple back into the state dict."""

    def __init__(self, aux: lets_core.AuxNet) -> None:
        super().__init__()
        self.aux = aux
        with torch.no_grad():
            state = aux.generate()
        first_key: dict[int, str] = {}
        for key, tensor in state.items():
            first_key.setdefault(id(tensor), key)
        self.distinct_keys = list(first_key.values())
        position = {key: i for i, key in enumerate(self.distinct_keys)}
        self.output_of = {key: position[first_key[id(tensor)]] for key, tensor in state.items()}

    def forward(self) -> tuple[Tensor, ...]:
        state = self.aux.generate()
        return tuple(state[key] for key in self.distinct_keys)

    def as_state(self, outputs: tuple[Tensor, ...]) -> dict[str, Tensor]:
        return {key: outputs[i] for key, i in self.output_of.items()}


def graphed_generation(aux: lets_core.AuxNet) -> Callable[[], dict[str, Tensor]]:
    """A function that returns ``aux.generate()``'s state dict by replaying CUDA graphs, with
    gradient to aux's parameters through a replayed backward graph. Capture it under the autocast
    the step will run under (with ``cache_enabled=False``, as torch requires)."""
    device = next(aux.parameters()).device
    if device.type != "cuda":
        raise ValueError(f"graphed_generation needs the Aux-Net on a CUDA device, got {device}")
    outputs = GenerationOutputs(aux)
    graphed = torch.cuda.make_graphed_callables(outputs, ())
    return lambda: outputs.as_state(graphed())


def check_graphed_matches(aux: lets_core.AuxNet, generate: Callable[[], dict[str, Tensor]]) -> float:
    """Largest relative difference between the graphed and the eager generation, over the
    generated weights and the parameters' gradients for the same random cotangents. Leaves the
    parameters' gradients cleared."""
    results = []
    for make in (aux.generate, generate):
        aux.zero_grad(set_to_none=True)
        state = make()
        keys = sorted(state)
        g = torch.Generator(device="cpu").manual_seed(3)  # the same cotangents both ways
        cot = [torch.randn(state[k].shape, generator=g).to(state[k]) for k in keys]
        torch.autograd.backward([state[k] for k in keys], cot)
        grads = [p.grad.detach().clone() for p in aux.parameters() if p.grad is not None]
        results.append([state[k].detach().clone() for k in keys] + grads)
    aux.zero_grad(set_to_none=True)
    eager, graphed = results
    if len(eager) != len(graphed):
        raise AssertionError(f"graphed generation gave {len(graphed)} tensors, eager {len(eager)}")
    worst = 0.0
    for a, b in zip(eager, graphed):
        scale = a.abs().max().clamp_min(1e-12)
        worst = max(worst, float((a - b).abs().max() / scale))
    return worst


class GraphedAuxNet(nn.Module):
    """The Aux-Net's forward with its generation replayed from CUDA graphs: ``generate`` (from
    :func:`graphed_generation`) gives the weights, timm's forward runs on them as in
    ``AuxNet.forward``. Its parameters are the Aux-Net's."""

    def __init__(self, aux: lets_core.AuxNet, generate: Callable[[], dict[str, Tensor]]) -> None:
        super().__init__()
        self.aux = aux
        self.generate = generate

    def forward(self, x: Tensor) -> Tensor:
        return torch.func.functional_call(self.aux._skeleton, self.generate(), (x,))
