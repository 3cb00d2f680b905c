"""Entropy coding of codec symbols: categorical models trained on counts, range-coded with constriction.

A `SymbolModel` is a categorical distribution over 0..n-1 built from integer counts (the
training set's statistics) plus a half-count prior, so every symbol stays codable. Counts are
integers and the probabilities are derived from them the same way on both sides, so encoder and
decoder quantise the model identically (constriction's exact fixed-point categorical model).

`RangeWriter` collects (symbol, model) pairs and codes them with constriction's range coder
(`stream.queue`, 32-bit words, written big-endian). Its sealed output ends in up to a word of
flush bits that the message does not need: `to_bytes` keeps the shortest prefix (possibly
incremented in its last byte) that the decoder, which pads with zero bytes, still decodes to
the same symbols, and it checks that by decoding. A packet then costs its information content
plus about 2.5 bits instead of about 17. `RangeReader` decodes symbols one by one; a model may
depend on the symbols decoded before it (the decoder chooses the same models in the same order).

Invalid data raises CodecError. constriction is imported when a model is first used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

import numpy as np

from ..errors import CodecError

__all__ = [
    "SymbolModel",
    "RangeWriter",
    "RangeReader",
    "CONSTRICTION_HINT",
    "constriction_missing",
    "constriction_version",
    "empirical_entropy_bits",
]

CONSTRICTION_HINT = "pip install constriction==0.5.0"
PRIOR = 0.5  # added to every count: unseen symbols stay codable at a small cost


def constriction_missing() -> str | None:
    if importlib.util.find_spec("constriction") is None:
        return f"the range coder library constriction is not installed: {CONSTRICTION_HINT}"
    return None


def constriction_version() -> str:
    from importlib.metadata import version

    return f"constriction {version('constriction')}"


class SymbolModel:
    """A fixed categorical model over 0..n-1 from non-negative integer counts."""

    def __init__(self, counts, name: str = "model"):
        counts = np.asarray(counts)
        if counts.ndim != 1 or counts.size < 1 or not np.issubdtype(counts.dtype, np.integer) or counts.min() < 0:
            raise ValueError(f"{name}: counts must be a non-empty vector of non-negative integers")
        self.name, self.counts = name, counts.astype(np.int64)
        weights = self.counts.astype(np.float64) + PRIOR
        self.probabilities = weights / weights.sum()
        self._coder = None

    @property
    def size(self) -> int:
        return len(self.counts)

    @property
    def coder(self):
        if self._coder is None:
            import constriction

            self._coder = constriction.stream.model.Categorical(self.probabilities, perfect=False)
        return self._coder

    def bits(self, symbols) -> float:
        """Information content of `symbols` under the model: what an ideal coder spends."""
        return float(-np.sum(np.log2(self.probabilities[np.asarray(symbols, np.int64)])))

    def entropy(self) -> float:
        """Bits per symbol of a symbol drawn from the model itself."""
        p = self.probabilities
        return float(-np.sum(p * np.log2(p)))

    @classmethod
    def fit(cls, symbols, size: int, name: str = "model") -> SymbolModel:
        """A model from observed symbols in 0..size-1."""
        return cls(np.bincount(np.asarray(symbols, np.int64).ravel(), minlength=size)[:size], name)


class RangeWriter:
    """Symbols and their models in coding order; `to_bytes` range-codes them."""

    def __init__(self):
        self.symbols: list[int] = []
        self.models: list[SymbolModel] = []

    def write(self, symbol: int, model: SymbolModel) -> None:
        symbol = int(symbol)
        if not 0 <= symbol < model.size:
            raise CodecError(f"symbol {symbol} is outside {model.name}'s alphabet of {model.size}")
        self.symbols.append(symbol)
        self.models.append(model)

    def write_all(self, symbols: Iterable[int], models: Iterable[SymbolModel]) -> None:
        for symbol, model in zip(symbols, models, strict=True):
            self.write(symbol, model)

    @property
    def model_bits(self) -> float:
        """Information content of everything written (the ideal length)."""
        return float(sum(-np.log2(m.probabilities[s]) for s, m in zip(self.symbols, self.models)))

    def to_bytes(self) -> bytes:
        import constriction

        encoder = constriction.stream.queue.RangeEncoder()
        for symbols, model in self._runs():
            encoder.encode(symbols, model.coder)
        full = encoder.get_compressed().astype(">u4").tobytes()
        return self._shortest(full)

    def _shortest(self, full: bytes) -> bytes:
        """The shortest prefix of `full` (as is, or its last byte incremented) that decodes the same."""
        best = full
        for cut in range(len(full) - 1, -1, -1):
            found = next((c for c in _prefix_candidates(full, cut) if self._decodes(c)), None)
            if found is None:
                break
            best = found
        return best

    def _decodes(self, data: bytes) -> bool:
        try:
            reader = RangeReader(data)
            return all(np.array_equal(reader.read_run(model, len(symbols)), symbols) for symbols, model in self._runs())
        except CodecError:
            return False

    def _runs(self) -> list[tuple[np.ndarray, SymbolModel]]:
        """Consecutive symbols that share a model, as arrays (one library call each)."""
        runs, start = [], 0
        for index in range(1, len(self.models) + 1):
            if index == len(self.models) or self.models[index] is not self.models[start]:
                runs.append((np.array(self.symbols[start:index], np.int32), self.models[start]))
                start = index
        return runs


def _prefix_candidates(full: bytes, cut: int):
    prefix = full[:cut]
    yield prefix
    if prefix and prefix[-1] < 0xFF:
        yield prefix[:-1] + bytes([prefix[-1] + 1])


class RangeReader:
    """Decodes symbols from a range-coded byte string, zero-padded to whole 32-bit words."""

    def __init__(self, data: bytes):
        import constriction

        padded = bytes(data) + b"\0" * (-len(data) % 4)
        words = np.frombuffer(padded, dtype=">u4").astype(np.uint32)
        self._decoder = constriction.stream.queue.RangeDecoder(words)

    def read(self, model: SymbolModel) -> int:
        try:
            return int(self._decoder.decode(model.coder))
        except (AssertionError, ValueError, RuntimeError) as err:
            raise CodecError(f"range-coded data is invalid for {model.name} ({err})") from None

    def read_many(self, models: Iterable[SymbolModel]) -> list[int]:
        """One symbol per model, in order."""
        return [self.read(model) for model in models]

    def read_run(self, model: SymbolModel, count: int) -> np.ndarray:
        """`count` symbols that share `model`."""
        try:
            return np.asarray(self._decoder.decode(model.coder, count), np.int64)
        except (AssertionError, ValueError, RuntimeError) as err:
            raise CodecError(f"range-coded data is invalid for {model.name} ({err})") from None


def empirical_entropy_bits(symbols) -> float:
    """n times the entropy of the symbols' own histogram: the zeroth-order bound of this stream."""
    values = np.asarray(symbols, np.int64).ravel()
    if values.size == 0:
        return 0.0
    counts = np.unique(values, return_counts=True)[1]
    p = counts / values.size
    return float(-values.size * np.sum(p * np.log2(p)))
