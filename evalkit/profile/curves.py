"""Quality versus packet loss: drop packets with a loss model, decode with the codec's concealment, score.

Each point is one (loss model, rate, seed) condition scored by a harness metric against the
input at the codec's native rate, plus the loss-free point (model "none") every curve starts
from. Scores follow the metric rules: a metric that cannot run gives a failed or skipped row
with its reason, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..audio import Audio, align, resample, to_mono
from ..codecs.bitstream import Bitstream
from ..errors import CodecError
from ..metrics import MetricResult, evaluate
from .loss import DEFAULT_BURST, LOSS_MODELS, LOSS_RATES, drop_packets, loss_model

__all__ = ["CurvePoint", "loss_curve", "default_metric"]


@dataclass(frozen=True)
class CurvePoint:
    """One loss condition and its score; `value` is None unless `status` is "ok"."""

    loss_model: str  # "none", "bernoulli" or "gilbert"
    loss_rate: float  # target fraction of packets lost
    mean_burst: float  # the model's expected run of consecutive losses, in packets (0 for "none")
    seed: int
    lost_fraction: float  # fraction of this clip's packets actually dropped
    metric: str
    metric_version: str
    value: float | None
    status: str
    reason: str
    package: str | None = None
    package_version: str | None = None


def default_metric(codec) -> str:
    """PESQ wideband for codecs at 16 kHz and above, narrowband PESQ for 8-12 kHz codecs."""
    return "pesq_wb" if codec.info.sample_rate >= 16000 else "pesq_nb"


def loss_curve(
    codec,
    audio: Audio,
    rates: Iterable[float] = LOSS_RATES,
    models: Iterable[str] = LOSS_MODELS,
    seeds: Iterable[int] = (0,),
    metric: str | None = None,
    mean_burst: float = DEFAULT_BURST,
) -> list[CurvePoint]:
    """Score `codec` on `audio` without loss and under every model x rate x seed."""
    metric = metric or default_metric(codec)
    rates, models, seeds = tuple(rates), tuple(models), tuple(seeds)  # each is iterated many times
    native = resample(to_mono(audio), codec.info.sample_rate)
    stream = codec.encode_packets(native)
    none = np.zeros(len(stream.packets), dtype=bool)
    points = _score(codec, native, stream, none, ("none", 0.0, 0.0, 0), metric)
    for name in models:
        for rate in rates:
            model = loss_model(name, rate, mean_burst)
            for seed in seeds:
                lost = model.mask(len(stream.packets), seed)
                points += _score(codec, native, stream, lost, (name, rate, model.mean_burst, seed), metric)
    return points


def _score(
    codec, native: Audio, stream: Bitstream, lost: np.ndarray, condition: tuple, metric: str
) -> list[CurvePoint]:
    fraction = float(np.mean(lost)) if len(lost) else 0.0
    try:
        decoded = codec.decode_packets(drop_packets(stream, lost))
    except CodecError as err:  # a decoder that cannot take this loss pattern is a result too
        return [CurvePoint(*condition, fraction, metric, "", None, "failed", str(err))]
    aligned = align(decoded, codec.info.lookahead_samples, native.frames)
    return [_point(condition, fraction, row) for row in evaluate(metric, native, aligned)]


def _point(condition: tuple, fraction: float, row: MetricResult) -> CurvePoint:
    return CurvePoint(
        *condition,
        fraction,
        row.metric,
        row.metric_version,
        row.value,
        row.status,
        row.reason,
        row.package,
        row.package_version,
    )
