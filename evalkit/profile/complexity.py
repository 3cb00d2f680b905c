"""Complexity of neural codecs: parameters and multiply-accumulates (MACs) per second of audio.

The protocol: a codec with torch modules exposes ``torch_modules()`` returning a mapping from a
role ("encoder", "decoder") to ``(module, example, seconds)``: the module, the positional
input(s) of one forward call, and how many seconds of audio that call encodes or decodes.
A codec without the method is not counted (DSP codecs: their cost shows as CPU time instead).

MACs come from torch's FlopCounterMode (matmuls and convolutions; FLOPs / 2), which sees every
matmul a module runs, also inside custom code. LSTMs run as one fused oneDNN kernel on CPU that
the counter does not see; a forward hook adds their analytic count when, and only when, the
counter saw nothing inside them. Elementwise operations and activations are not counted, as
is usual for MAC figures. torch is imported only here and only when a codec has modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = [
    "TorchPart",
    "PartComplexity",
    "torch_parts",
    "count_macs",
    "parameter_count",
    "measure_complexity",
    "recurrent_macs",
]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


@dataclass(frozen=True)
class TorchPart:
    """One role of a neural codec: its module, one forward call's input(s), and their duration."""

    module: Any  # torch.nn.Module
    example: Any  # a tensor, or a tuple of positional arguments
    seconds: float  # seconds of audio this forward call covers


@dataclass(frozen=True)
class PartComplexity:
    params: int
    macs: int  # for the example call
    seconds: float

    @property
    def macs_per_second(self) -> float:
        return self.macs / self.seconds


def torch_parts(codec) -> dict[str, TorchPart] | None:
    """The codec's torch modules by role, or None when it has none."""
    get = getattr(codec, "torch_modules", None)
    if get is None:
        return None
    parts = get()
    if not isinstance(parts, Mapping):
        raise ConfigError(f"{codec!r}: torch_modules() must return a mapping of role -> (module, example, seconds)")
    return {role: _as_part(codec, role, value) for role, value in parts.items()}


def measure_complexity(codec) -> dict[str, PartComplexity] | None:
    """Parameters and MACs of each role of a neural codec; None for a codec without torch modules."""
    parts = torch_parts(codec)
    if parts is None:
        return None
    return {
        role: PartComplexity(parameter_count(part.module), count_macs(part.module, part.example), part.seconds)
        for role, part in parts.items()
    }


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(module, example) -> int:
    """MACs of one forward call of `module` on `example` (a tensor or a tuple of arguments)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    args = example if isinstance(example, tuple) else (example,)
    counter = FlopCounterMode(display=False)
    with _RecurrentFallback(module, counter) as fallback, counter, torch.no_grad():
        module(*args)
    return counter.get_total_flops() // 2 + fallback.macs


class _RecurrentFallback:
    """Forward hooks on recurrent layers that add the analytic MACs the counter missed."""

    def __init__(self, module, counter):
        import torch

        self.counter, self.macs, self.handles, self.before = counter, 0, [], {}
        self.layers = [m for m in module.modules() if isinstance(m, torch.nn.RNNBase)]

    def __enter__(self):
        for layer in self.layers:
            self.handles.append(layer.register_forward_pre_hook(self._pre))
            self.handles.append(layer.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()

    def _pre(self, layer, inputs):
        self.before[id(layer)] = self.counter.get_total_flops()

    def _post(self, layer, inputs, output):
        if self.counter.get_total_flops() == self.before.pop(id(layer)):
            self.macs += recurrent_macs(layer, inputs[0])


def recurrent_macs(layer, x) -> int:
    """MACs of an nn.RNN/GRU/LSTM over input `x`: gates x hidden x (input + hidden) per step,
    per layer and direction, plus the LSTM projection when proj_size is set."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        steps = x.data.shape[0]  # sum of the sequence lengths
    elif x.dim() == 2:
        steps = x.shape[0]  # unbatched
    else:
        steps = x.shape[0] * x.shape[1]
    hidden, proj = layer.hidden_size, getattr(layer, "proj_size", 0)
    out = proj or hidden
    directions = 2 if layer.bidirectional else 1
    per_step, size_in = 0, layer.input_size
    for _ in range(layer.num_layers):
        per_step += directions * (_GATES[layer.mode] * hidden * (size_in + out) + hidden * proj)
        size_in = out * directions
    return per_step * steps


def _as_part(codec, role: str, value) -> TorchPart:
    if isinstance(value, TorchPart):
        part = value
    elif isinstance(value, tuple) and len(value) == 3:
        part = TorchPart(*value)
    else:
        raise ConfigError(f"{codec!r}: torch_modules()[{role!r}] must be (module, example, seconds)")
    if not part.seconds > 0:
        raise ConfigError(f"{codec!r}: torch_modules()[{role!r}] covers {part.seconds!r} s; it must be > 0")
    return part
