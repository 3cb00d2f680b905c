"""A torch module that runs a function over a wrapped model: how adapters expose their encode and
decode paths to MAC counting (evalkit.profile's torch_modules protocol)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["FunctionPart"]


class FunctionPart(nn.Module):
    """forward(*args) = function(*args); `model` is registered so its parameters are counted."""

    def __init__(self, model: nn.Module, function: Callable):
        super().__init__()
        self.model, self.function = model, function

    def forward(self, *args):
        return self.function(*args)
