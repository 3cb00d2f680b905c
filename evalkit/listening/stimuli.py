"""Stimulus preparation on the server: excerpt, render every condition, level, check, encode.

Every condition goes through the harness as a codec (the hidden reference is the identity codec
at the test's rate, the anchors are the BS.1534-3 low-pass cards), so each stimulus is aligned
sample-exactly with the reference and has its length and rate. Levelling (BS.1770):
the reference is brought to the target loudness; by default the anchors take the reference's
gain, because a low-pass filtered copy of the reference should differ from it in bandwidth only
(normalising it would raise its level by the loudness its missing high band carried), while each
codec output is normalised on its own, so that a codec's gain error is not rated as quality.
Stimuli are stored as 16-bit FLAC or WAV without metadata, and served as 24-bit dithered WAV (`deliver`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import Audio, load, loudness, resample, to_mono
from ..cache import DecodedCache
from ..cards import Card, load_cards
from ..errors import AudioError, CodecError, ConfigError
from ..harness import roundtrip
from .spec import ConditionSpec, ItemSpec, TestSpec

__all__ = [
    "Stimulus",
    "prepare_item",
    "prepare_stimuli",
    "excerpt",
    "encode_audio",
    "condition_cards",
    "read_stimulus",
    "deliver",
    "DELIVERY_MIME",
]
_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Stimulus:
    """One levelled, 16-bit-exact stimulus (float samples on the 16-bit grid) and how it was made."""

    item: str
    condition: str
    audio: Audio
    loudness: float  # LUFS as delivered
    gain_db: float
    peak_dbfs: float
    bitrate: float | None  # measured payload bit/s; None for pre-rendered files


def excerpt(spec: TestSpec, item: ItemSpec) -> Audio:
    """The item's excerpt at the test's rate: cut, faded where cut (no clicks), resampled."""
    audio = load(item.path, id=item.id)
    if spec.downmix:
        audio = to_mono(audio)
    return resample(_cut(audio, item, spec.fade_ms), spec.sample_rate)


def _cut(audio: Audio, item: ItemSpec, fade_ms: float) -> Audio:
    first = int(round(item.start * audio.sample_rate))
    last = audio.frames if item.end is None else min(audio.frames, int(round(item.end * audio.sample_rate)))
    x = audio.samples[:, first:last].astype(np.float64)
    fade = min(int(fade_ms * audio.sample_rate / 1000), x.shape[1] // 4)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)  # raised cosine
        if first > 0:
            x[:, :fade] *= ramp
        if last < audio.frames:
            x[:, -fade:] *= ramp[::-1]
    return audio.with_samples(x)


def condition_cards(spec: TestSpec, cards_dir: str | Path | None = None) -> dict[str, Card | None]:
    """The codec card of every condition (None: pre-rendered files); the hidden reference is the
    identity codec at the test's rate, not the 16 kHz `reference` card, so it keeps the full band."""
    cards = load_cards(cards_dir)
    found: dict[str, Card | None] = {}
    for condition in spec.conditions:
        if condition.kind == "reference":
            found[condition.name] = Card("reference", "identity", {"sample_rate": spec.sample_rate}, "hidden reference")
        elif condition.card is None:
            found[condition.name] = None
        elif condition.card in cards:
            found[condition.name] = cards[condition.card]
        else:
            raise ConfigError(f"{spec.source}: conditions {condition.name}: unknown codec card {condition.card!r}")
    return found


def _digest(audio: Audio) -> str:
    digest = hashlib.sha256(f"{audio.sample_rate}|{audio.samples.shape}".encode())
    digest.update(audio.samples.tobytes())
    return digest.hexdigest()


def _render_card(card: Card, source: Audio, spec: TestSpec, cache: DecodedCache | None) -> tuple[Audio, float]:
    """Through the harness, reusing the decoded-audio cache; the bitrate travels in a sidecar."""
    codec = card.build(source.sample_rate)
    key = DecodedCache.key(_digest(source), card.config_hash, codec.info.version, spec.downmix)
    if cache is not None and (audio := cache.get(key, source.id)) is not None:
        sidecar = cache.path(key).with_suffix(".json")
        if sidecar.is_file():
            return audio, json.loads(sidecar.read_text())["bitrate"]
    try:
        run = roundtrip(codec, source, downmix=spec.downmix)
    except (AudioError, CodecError) as err:
        raise ConfigError(f"{spec.source}: item {source.id}: codec {card.name} failed: {err}") from None
    if cache is not None:
        cache.put(key, run.decoded)
        cache.path(key).with_suffix(".json").write_text(json.dumps({"bitrate": run.bitrate}))
    return run.decoded, run.bitrate


def _render_file(condition: ConditionSpec, item: ItemSpec, source: Audio, spec: TestSpec) -> Audio:
    """A pre-rendered file, cut like the reference and resampled; its length must already match."""
    path = condition.files[item.id]
    audio = load(path, id=item.id)
    if spec.downmix:
        audio = to_mono(audio)
    audio = resample(_cut(audio, item, spec.fade_ms), spec.sample_rate)
    where = f"{spec.source}: conditions {condition.name}: {path}"
    if audio.channels != source.channels:
        raise ConfigError(f"{where}: {audio.channels} channel(s), the reference has {source.channels}")
    slack = max(1, spec.sample_rate // 1000)  # resampling may round the length by a frame or so
    if abs(audio.frames - source.frames) > slack:
        raise ConfigError(
            f"{where}: {audio.frames / spec.sample_rate:.3f} s long after preparation, the "
            f"reference {source.frames / spec.sample_rate:.3f} s; render it from the same file"
        )
    fitted = np.zeros_like(source.samples)
    fitted[:, : min(audio.frames, source.frames)] = audio.samples[:, : source.frames]
    return audio.with_samples(fitted)


def _gain_db(audio: Audio, target: float, where: str) -> float:
    try:
        level = loudness(audio)
    except AudioError as err:
        raise ConfigError(f"{where}: {err}") from None
    if not math.isfinite(level):
        raise ConfigError(f"{where}: is silent; it cannot be levelled")
    return target - level


def _level(audio: Audio, gain_db: float, where: str) -> tuple[Audio, float]:
    """Apply the gain and round to 16 bits; a stimulus that would clip is an error, not a distortion."""
    x = audio.samples.astype(np.float64) * 10 ** (gain_db / 20)
    peak = float(np.max(np.abs(x)))
    if peak >= 32767 / _FULL_SCALE:
        raise ConfigError(
            f"{where}: peaks at {20 * math.log10(peak):+.1f} dBFS after levelling; lower loudness.target_lufs"
        )
    return audio.with_samples(np.round(x * _FULL_SCALE) / _FULL_SCALE), 20 * math.log10(max(peak, 1e-10))


def prepare_item(
    spec: TestSpec, item: ItemSpec, cache: DecodedCache | None = None, cards: dict[str, Card | None] | None = None
) -> dict[str, Stimulus]:
    """Every condition of one item, levelled and checked to share rate, length and channels."""
    cards = condition_cards(spec) if cards is None else cards
    source = excerpt(spec, item)
    reference_gain = _gain_db(source, spec.target_lufs, f"{spec.source}: item {item.id}")
    stimuli = {}
    for condition in spec.conditions:
        card = cards[condition.name]
        rendered, bitrate = (
            _render_card(card, source, spec, cache)
            if card is not None
            else (_render_file(condition, item, source, spec), None)
        )
        where = f"{spec.source}: item {item.id}, condition {condition.name}"
        gain = reference_gain if _keeps_reference_gain(spec, condition) else _gain_db(rendered, spec.target_lufs, where)
        audio, peak = _level(rendered, gain, where)
        stimuli[condition.name] = Stimulus(
            item.id,
            condition.name,
            audio,
            loudness(audio),
            gain,
            peak,
            None if condition.kind in ("reference", "anchor", "file") else bitrate,
        )
    _check_matching(spec, item, stimuli)
    return stimuli


def _keeps_reference_gain(spec: TestSpec, condition: ConditionSpec) -> bool:
    if condition.kind == "reference":
        return True
    policy = spec.anchor_levelling if condition.kind == "anchor" else spec.codec_levelling
    return policy == "reference"


def _check_matching(spec: TestSpec, item: ItemSpec, stimuli: dict[str, Stimulus]) -> None:
    first = "reference" if "reference" in stimuli else next(iter(stimuli))  # a type may have no reference
    reference = stimuli[first].audio
    for name, stimulus in stimuli.items():
        shape = (stimulus.audio.sample_rate, stimulus.audio.frames, stimulus.audio.channels)
        if shape != (reference.sample_rate, reference.frames, reference.channels):
            raise ConfigError(
                f"{spec.source}: item {item.id}, condition {name}: rate/frames/channels {shape} differ "
                f"from {first}'s {(reference.sample_rate, reference.frames, reference.channels)}"
            )


def encode_audio(audio: Audio, fmt: str = "flac") -> bytes:
    """16-bit FLAC or WAV bytes, with no metadata (nothing in them names the condition or file)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio.samples.T, audio.sample_rate, subtype="PCM_16", format=fmt.upper())
    data = buffer.getvalue()
    return _strip_flac_comments(data) if fmt == "flac" else data


def _strip_flac_comments(data: bytes) -> bytes:
    """Drop the VORBIS_COMMENT block: its vendor string ("reference libFLAC ...") names nothing of
    the test, but a stored stimulus should carry nothing but audio."""
    blocks, audio = _flac_blocks(data)
    return _flac_join([(kind, body) for kind, body in blocks if kind != _FLAC_COMMENT], audio)


# Served bytes: what reaches the browser must not tell conditions apart by size, bytes or metadata.
DELIVERY_MIME = "audio/wav"
_DITHER_SPAN = 256  # 24-bit steps in one step of the stored 16-bit grid


def read_stimulus(path: str | Path) -> np.ndarray:
    """A stored stimulus (FLAC or WAV) as 16-bit integers shaped (frames, channels)."""
    import soundfile as sf

    samples, _ = sf.read(str(path), dtype="int16", always_2d=True)
    return samples


def deliver(samples: np.ndarray, sample_rate: int, seed: bytes) -> bytes:
    """A stored 16-bit stimulus as the browser gets it: 24-bit PCM WAV, TPDF-dithered from `seed`.

    Every stimulus of an item has the same frames, so the same size and the same 44-byte header,
    whatever its condition (FLAC would compress a low-pass anchor better, and padding it to one
    size leaves the true size readable). The dither, triangular over one step of the 16-bit grid
    (about -101 dBFS, like any 16-bit dither), fills the low byte of every sample from a seed of
    the session and the stimulus id: no two stimuli (the reference button and the hidden
    reference included), and no stimulus in two sessions, share a run of bytes or a hash.
    """
    frames, channels = samples.shape
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    noise = np.frombuffer(rng.bytes(2 * samples.size), np.uint8).reshape(2, -1)
    values = samples.reshape(-1).astype(np.int32) * _DITHER_SPAN + noise[0] + noise[1] - (_DITHER_SPAN - 1)
    np.clip(values, -(2**23), 2**23 - 1, out=values)
    body = values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return _wav_header(frames, channels, sample_rate) + body


def _wav_header(frames: int, channels: int, sample_rate: int) -> bytes:
    size, block = frames * channels * 3, channels * 3
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block, block, 24)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", size)
    )


_FLAC_COMMENT = 4


def _flac_blocks(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """A FLAC file's metadata blocks as (type, body), and the audio frames after them."""
    blocks, offset, last = [], 4, False
    while not last:
        header = data[offset]
        last, kind, size = bool(header & 0x80), header & 0x7F, int.from_bytes(data[offset + 1 : offset + 4], "big")
        blocks.append((kind, data[offset + 4 : offset + 4 + size]))
        offset += 4 + size
    return blocks, data[offset:]


def _flac_join(blocks: list[tuple[int, bytes]], audio: bytes) -> bytes:
    head = b"".join(
        bytes([kind | (0x80 if i == len(blocks) - 1 else 0)]) + len(body).to_bytes(3, "big") + body
        for i, (kind, body) in enumerate(blocks)
    )
    return b"fLaC" + head + audio


def prepare_stimuli(
    spec: TestSpec,
    out_dir: str | Path,
    cache_root: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    cards_dir: str | Path | None = None,
) -> Iterator[tuple[Stimulus, str, str]]:
    """Prepare and write every stimulus under `out_dir`; yields (stimulus, relative path, sha256)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = DecodedCache(cache_root) if cache_root is not None else None
    cards = condition_cards(spec, cards_dir)
    for item_index, item in enumerate(spec.items):
        if progress:
            progress(f"item {item_index + 1}/{len(spec.items)}: {item.id}")
        stimuli = prepare_item(spec, item, cache, cards)
        for condition_index, condition in enumerate(spec.conditions):
            data = encode_audio(stimuli[condition.name].audio, spec.format)
            relative = f"{item_index:03d}-{condition_index:02d}.{spec.format}"
            (out_dir / relative).write_bytes(data)
            yield stimuli[condition.name], relative, hashlib.sha256(data).hexdigest()
