"""A codec card's profile: complexity, speed, memory, latency, and its quality-versus-loss curve."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..audio import Audio, resample, to_mono
from ..cards import Card
from .complexity import PartComplexity, measure_complexity
from .concealment import concealment_of
from .curves import CurvePoint, loss_curve
from .latency import Latency, measure_latency
from .loss import DEFAULT_BURST, LOSS_MODELS, LOSS_RATES
from .profile_row import Profile
from .resource_use import Cost, measure_cost_isolated

__all__ = ["Profile", "ProfileRun", "profile_card", "profile_speech", "default_cards", "PROFILE_RATE"]

PROFILE_RATE = 16000  # the demo corpus is 16 kHz speech at heart (much of it is 8 kHz telephone)


@dataclass(frozen=True)
class ProfileRun:
    profile: Profile
    curve: list[CurvePoint]  # empty when loss was not measured


def profile_card(
    card: Card,
    audio: Audio | None = None,
    *,
    loss: bool = True,
    rates: Iterable[float] = LOSS_RATES,
    models: Iterable[str] = LOSS_MODELS,
    seeds: Iterable[int] = (0,),
    metric: str | None = None,
    mean_burst: float = DEFAULT_BURST,
    repeats: int = 5,
) -> ProfileRun:
    """Profile one card on `audio` (default: 10 s of demo speech)."""
    audio = to_mono(audio if audio is not None else profile_speech())
    codec = card.build()
    native = resample(audio, codec.info.sample_rate)
    cost = measure_cost_isolated(card, native, repeats)
    parts = measure_complexity(codec)
    profile = _profile(card, codec, cost, measure_latency(codec, audio), parts)
    curve = loss_curve(codec, audio, rates, models, seeds, metric, mean_burst) if loss else []
    return ProfileRun(profile, curve)


def profile_speech(seconds: float = 10.0) -> Audio:
    """The demo corpus's speech at 16 kHz, joined and cut to `seconds` (real speakers, offline)."""
    from ..datasets import load_dataset
    from ..demo_pipeline import DEMO_MANIFEST

    clips = [resample(to_mono(item.load()), PROFILE_RATE).samples[0] for item in load_dataset(DEMO_MANIFEST)]
    joined = np.concatenate(clips)[: int(seconds * PROFILE_RATE)]
    return Audio(joined, PROFILE_RATE, "profile-speech")


def default_cards(cards: dict[str, Card]) -> list[Card]:
    """One available card per codec family (the first by name), the reference among them."""
    chosen: dict[str, Card] = {}
    for _, card in sorted(cards.items()):
        if card.unavailable() is None:
            chosen.setdefault(card.build().info.family, card)
    return sorted(chosen.values(), key=lambda card: card.name)


def _profile(card: Card, codec, cost: Cost, latency: Latency, parts: dict[str, PartComplexity] | None) -> Profile:
    info = codec.info
    encoder, decoder = (parts or {}).get("encoder"), (parts or {}).get("decoder")
    return Profile(
        codec=card.name,
        codec_hash=card.config_hash,
        codec_version=info.version,
        backend=card.backend,
        family=info.family,
        sample_rate=info.sample_rate,
        nominal_bitrate=info.nominal_bitrate,
        params_encoder=encoder and encoder.params,
        params_decoder=decoder and decoder.params,
        macs_encoder_per_s=encoder and encoder.macs_per_second,
        macs_decoder_per_s=decoder and decoder.macs_per_second,
        **dataclasses.asdict(cost),
        frame_samples=latency.frame_samples,
        declared_delay=latency.declared_delay,
        measured_delay=latency.measured_delay,
        declared_latency_ms=latency.declared_ms,
        measured_latency_ms=latency.measured_ms,
        latency_ok=latency.ok,
        streaming=latency.streaming,
        concealment=concealment_of(codec),
        packages=_packages(info.needs, torch=parts is not None),
    )


def _packages(needs: tuple[str, ...], torch: bool) -> dict[str, str]:
    """Versions of the packages whose code produced the numbers (what is not a package is left out)."""
    names = ["evalkit", "numpy", *needs] + (["torch"] if torch else [])
    versions = {}
    for name in dict.fromkeys(names):
        try:
            versions[name] = importlib.metadata.version(name)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    if "evalkit" not in versions:
        from .. import __version__

        versions["evalkit"] = __version__
    return versions
