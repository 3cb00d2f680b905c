"""Packet-loss simulators: independent (Bernoulli) and bursty (Gilbert–Elliott) loss over a bitstream's packets.

Loss acts on the codec's own packets (`Codec.encode_packets`): a lost packet becomes None and
the decoder conceals it as a real receiver would. Masks are drawn from a seeded generator, so a
condition is reproducible, and one seed gives nested Bernoulli masks across rates (a packet
lost at 3 % is also lost at 5 %), which keeps quality-versus-loss curves smooth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codecs.bitstream import Bitstream
from ..errors import ConfigError

__all__ = [
    "LOSS_RATES",
    "DEFAULT_BURST",
    "LOSS_MODELS",
    "Bernoulli",
    "GilbertElliott",
    "loss_model",
    "drop_packets",
    "burst_lengths",
]

LOSS_RATES = (0.01, 0.03, 0.05, 0.10, 0.20)
# Mean burst of the bursty model, in packets: 60 ms at 20 ms packets, clearly burstier than
# independent loss (whose mean burst is 1 / (1 - rate), 1.25 packets even at 20 %).
DEFAULT_BURST = 3.0


@dataclass(frozen=True)
class Bernoulli:
    """Each packet is lost independently with probability `rate`."""

    rate: float
    name = "bernoulli"

    def __post_init__(self):
        _check_probability("rate", self.rate)

    @property
    def mean_burst(self) -> float:
        """Expected length of a run of consecutive losses, in packets."""
        return 1.0 / (1.0 - self.rate) if self.rate < 1 else float("inf")

    def mask(self, n: int, seed: int) -> np.ndarray:
        """Boolean array: True where packet i is lost."""
        return np.random.default_rng(seed).random(n) < self.rate


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state Markov loss: Good -> Bad with probability `p` per packet, Bad -> Good with `r`;
    a packet is lost with probability `loss_good` in Good and `loss_bad` in Bad.

    With the defaults (0 and 1: Gilbert's model) the loss rate is p / (p + r) and a burst of
    consecutive losses lasts 1 / r packets on average.
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0
    name = "gilbert"

    def __post_init__(self):
        for field in ("p", "r", "loss_good", "loss_bad"):
            _check_probability(field, getattr(self, field))
        if self.p + self.r == 0:
            raise ConfigError("gilbert: p and r cannot both be 0 (the chain would never mix)")

    @classmethod
    def from_rate(cls, rate: float, mean_burst: float = DEFAULT_BURST) -> GilbertElliott:
        """Gilbert's model with a given loss rate and mean burst length (packets)."""
        _check_probability("rate", rate)
        if not mean_burst >= 1 or rate >= 1:
            raise ConfigError(f"gilbert: need mean_burst >= 1 and rate < 1, got {mean_burst!r} and {rate!r}")
        r = 1.0 / mean_burst
        p = rate * r / (1.0 - rate)
        if p > 1:
            raise ConfigError(f"gilbert: a {100 * rate:g} % loss rate cannot have bursts as short as {mean_burst:g}")
        return cls(p, r)

    @property
    def rate(self) -> float:
        """Long-run fraction of packets lost."""
        return (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)

    @property
    def mean_burst(self) -> float:
        """Mean time in the Bad state (packets): the mean loss burst for Gilbert's model."""
        return 1.0 / self.r if self.r > 0 else float("inf")

    def mask(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        bad = self._states(n, rng)
        return rng.random(n) < np.where(bad, self.loss_bad, self.loss_good)

    def _states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The Bad/Good state per packet, drawn run by run (each run's length is geometric)."""
        bad = np.zeros(n, dtype=bool)
        state = rng.random() < self.p / (self.p + self.r)  # start in the stationary distribution
        start = 0
        while start < n:
            leave = self.r if state else self.p
            run = int(rng.geometric(leave)) if leave > 0 else n
            bad[start : start + run] = state
            start += run
            state = not state
        return bad


LOSS_MODELS = ("bernoulli", "gilbert")


def loss_model(name: str, rate: float, mean_burst: float = DEFAULT_BURST) -> Bernoulli | GilbertElliott:
    """The named model at a target loss rate."""
    if name == "bernoulli":
        return Bernoulli(rate)
    if name == "gilbert":
        return GilbertElliott.from_rate(rate, mean_burst)
    raise ConfigError(f"unknown loss model {name!r}; choose one of {', '.join(LOSS_MODELS)}")


def drop_packets(stream: Bitstream, lost: np.ndarray) -> Bitstream:
    """A copy of `stream` with packet i replaced by None where `lost[i]`."""
    if len(lost) != len(stream.packets):
        raise ConfigError(f"loss mask has {len(lost)} entries for {len(stream.packets)} packets")
    packets = [None if gone else packet for packet, gone in zip(stream.packets, lost)]
    return Bitstream(stream.backend, stream.header, packets)


def burst_lengths(lost: np.ndarray) -> np.ndarray:
    """Lengths of the runs of consecutive lost packets, in order."""
    edges = np.diff(np.concatenate(([0], np.asarray(lost, dtype=np.int8), [0])))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def _check_probability(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"loss model: {name} must be a probability between 0 and 1, got {value!r}")
