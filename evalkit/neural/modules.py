"""Causal convolutional building blocks that run offline or in chunks with carried state.

Every block has `forward(x)` for whole signals and `stream(x, state) -> (y, state)` for
chunks; feeding a signal chunk by chunk (chunk lengths a multiple of the block's total stride)
gives exactly the offline output, because each convolution's left context is the state and
nothing looks right. `state=None` starts a stream.

Causality: a strided convolution with kernel k and stride s is padded by k - s on the left,
so output i depends on inputs up to (i + 1) s - 1, the end of its own block. A transposed
convolution (kernel 2 s) keeps its first s outputs per input and carries the overlap into
the next block; output block i depends on inputs up to i. An encoder/decoder pair built
from them therefore outputs sample n from frames up to floor(n / hop): zero lookahead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CausalConv1d", "CausalConvTranspose1d", "ResidualUnit", "StreamSequential", "Activation"]


class CausalConv1d(nn.Conv1d):
    """Conv1d with left padding (k - 1) d + 1 - s; stride s must divide chunk lengths when streaming."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups)
        self.context = (kernel - 1) * dilation + 1 - stride

    def forward(self, x):
        return super().forward(F.pad(x, (self.context, 0)))

    def stream(self, x, state):
        if state is None:
            state = x.new_zeros(x.shape[0], x.shape[1], self.context)
        full = torch.cat([state, x], dim=-1)
        return super().forward(full), full[..., full.shape[-1] - self.context :]


class CausalConvTranspose1d(nn.ConvTranspose1d):
    """ConvTranspose1d (kernel 2 s, stride s) whose right overlap is trimmed offline, carried when streaming."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(cin, cout, 2 * stride, stride=stride)
        self.overlap = stride

    def forward(self, x):
        y = super().forward(x)
        return y[..., : y.shape[-1] - self.overlap]

    def stream(self, x, state):
        y = F.conv_transpose1d(x, self.weight, None, self.stride)
        if state is not None:
            y = torch.cat([y[..., : self.overlap] + state, y[..., self.overlap :]], dim=-1)
        out = y[..., : y.shape[-1] - self.overlap] + self.bias[:, None]
        return out, y[..., y.shape[-1] - self.overlap :]


class Activation(nn.ELU):
    """ELU, stateless in streams."""

    def stream(self, x, state):
        return self(x), None


class ResidualUnit(nn.Module):
    """SEANet residual unit: x + conv1x1(elu(conv_k,dilated(elu(x)))), halving channels inside."""

    def __init__(self, channels: int, kernel: int = 3, dilation: int = 1):
        super().__init__()
        hidden = max(channels // 2, 1)
        self.conv = CausalConv1d(channels, hidden, kernel, dilation=dilation)
        self.proj = nn.Conv1d(hidden, channels, 1)

    def forward(self, x):
        return x + self.proj(F.elu(self.conv(F.elu(x))))

    def stream(self, x, state):
        y, state = self.conv.stream(F.elu(x), state)
        return x + self.proj(F.elu(y)), state


class StreamSequential(nn.Sequential):
    """nn.Sequential whose `stream` threads one state per layer."""

    def stream(self, x, state):
        state = state if state is not None else [None] * len(self)
        new = []
        for layer, layer_state in zip(self, state):
            x, layer_state = layer.stream(x, layer_state)
            new.append(layer_state)
        return x, new
