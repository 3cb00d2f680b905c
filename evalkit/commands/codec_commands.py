"""`evalkit codecs`, `roundtrip`, `encode`, `decode`, `metrics`, `demo` and `train`: codecs and metrics one at a time."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from ..errors import AudioError, CodecError
from .common import refuse_overwrite


def cmd_codecs(args) -> int:
    """Table of every codec card: availability, rate, bitrate, latency."""
    from ..codecs.ffmpeg_cli import ENCODER_PROBE

    ENCODER_PROBE.start()  # ffmpeg answers while the cards are loaded and built
    from ..cards import load_cards
    from ..text_tables import codec_table

    broken: list[str] = []
    print(codec_table(load_cards(args.cards, broken=broken), show_reasons=args.verbose))
    for line in broken:
        print(f"evalkit: error: {line}", file=sys.stderr)
    return 1 if broken else 0


def cmd_roundtrip(args) -> int:
    """Encode and decode one file; print measured bitrate and latency."""
    from ..audio import MIN_COST_SECONDS, check_content, load, save
    from ..cards import find_card
    from ..harness import roundtrip

    refuse_overwrite(args.output, args.force)
    audio = load(args.input)
    content = check_content(audio, min_seconds=MIN_COST_SECONDS)
    if content.problem == "too short":
        raise AudioError(f"{args.input}: {content.reason}: too short to measure a codec's bitrate and delay")
    _warn_content(args.input, content)
    codec = find_card(args.codec, args.cards).build(audio.sample_rate)
    run = roundtrip(codec, audio, downmix=args.downmix)
    save(run.decoded, args.output)
    info = codec.info
    if run.measured_delay is not None:
        measured = f"{run.measured_delay} samples"
    else:
        measured = f"not measurable ({content.problem or 'silent output'})"
    print(
        f"{args.codec}: {run.bitrate / 1000:.2f} kbit/s payload (nominal {_kbps(info.nominal_bitrate)}), "
        f"+{run.overhead_bytes} bytes container overhead"
    )
    print(
        f"latency: algorithmic {info.algorithmic_latency_ms:.1f} ms; output delay declared "
        f"{run.declared_delay} samples, measured {measured} at {info.sample_rate} Hz"
        + ("" if run.delay_ok in (True, None) else "  MISMATCH")
    )
    print(f"wrote {args.output}")
    return 0


def cmd_encode(args) -> int:
    """Encode an audio file to an evalkit bitstream file."""
    from ..audio import MIN_COST_SECONDS, check_content, downmix, load, resample
    from ..cards import find_card
    from ..datasets import AUDIO_SUFFIXES

    if Path(args.output).suffix.lower() in AUDIO_SUFFIXES:  # a bitstream named like audio breaks what reads it
        raise CodecError(
            f"{args.output}: encode writes an evalkit bitstream, not audio; name it .evk "
            "(evalkit roundtrip writes the decoded audio)"
        )
    refuse_overwrite(args.output, args.force)
    audio = load(args.input)
    codec = find_card(args.codec, args.cards).build(audio.sample_rate)
    audio = downmix(audio) if args.downmix else audio
    content = check_content(audio, min_seconds=MIN_COST_SECONDS)
    _warn_content(args.input, content)
    data = codec.encode(resample(audio, codec.info.sample_rate))
    Path(args.output).write_bytes(data)
    rate = (
        "too short for a bitrate"
        if content.problem == "too short"
        else f"{8 * len(data) / audio.duration / 1000:.2f} kbit/s"
    )
    print(f"wrote {args.output}: {len(data)} bytes, {rate}")
    return 0


def cmd_decode(args) -> int:
    """Decode an evalkit bitstream file with the card that wrote it."""
    from ..audio import align, save
    from ..cards import find_card
    from ..codecs import StreamConfigError
    from ..errors import ConfigError

    refuse_overwrite(args.output, args.force)
    card = find_card(args.codec, args.cards)
    data = _read_stream(args.input)
    rate = _stream_rate(data, card) if card.follows_item_rate else None
    try:
        codec = card.build(rate)
    except ConfigError as err:  # the rate came from the stream's header: say so
        raise CodecError(f"{args.input}: its header's sample rate {rate!r} does not fit {card.name}: {err}") from None
    try:
        decoded = codec.decode(data)
    except StreamConfigError as err:
        raise CodecError(
            f"{args.input}: {err}{_cards_for_stream(card.backend, err.stream_config, args.cards)}"
        ) from None
    except CodecError as err:
        raise CodecError(f"{args.input}: {err}{_card_of_writer(data, card.backend, args.cards)}") from None
    frames = decoded.frames - codec.info.lookahead_samples
    save(align(decoded, codec.info.lookahead_samples, frames), args.output)
    print(f"wrote {args.output}: {frames / decoded.sample_rate:.2f} s at {decoded.sample_rate} Hz")
    return 0


MAX_STREAM_BYTES = 1 << 30  # an hour of 48 kHz 16-bit PCM is 0.35 GB


def _read_stream(path: str) -> bytes:
    """The file's bytes; a device (/dev/zero never ends) or anything over MAX_STREAM_BYTES is refused
    (a pipe, as from <(...), is read)."""
    try:
        if stat.S_ISCHR(os.stat(path).st_mode) or stat.S_ISBLK(os.stat(path).st_mode):
            raise CodecError(f"{path}: is a device, not a bitstream file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_STREAM_BYTES + 1)
    except OSError as err:
        raise CodecError(f"{path}: cannot read the bitstream file ({err.strerror or err})") from None
    if len(data) > MAX_STREAM_BYTES:
        raise CodecError(f"{path}: larger than {MAX_STREAM_BYTES >> 30} GiB; not one evalkit bitstream")
    return data


def _cards_for_stream(backend_name: str, stream_config: dict, directory) -> str:
    """ ": --codec NAME" when a card of backend `backend_name` has the stream's configuration."""
    from ..cards import load_cards
    from ..codecs import BACKENDS

    backend = BACKENDS.get(backend_name)
    rate = {"sample_rate": stream_config.get("sample_rate")}
    names = [
        c.name
        for c in load_cards(directory).values()
        if c.backend == backend_name
        and backend.stream_config(**{**c.params, **(rate if c.follows_item_rate else {})}) == stream_config
    ]
    return f": --codec {names[0]}" if names else ""


def _card_of_writer(data: bytes, backend_name: str, directory) -> str:
    """For a stream another backend wrote: "; decode it with the card that wrote it: --codec NAME" when
    a card of that backend has the stream's configuration (the header names both)."""
    from ..codecs import BACKENDS, Bitstream

    writer = data[6 : 6 + data[5]].decode("ascii", "replace") if len(data) > 6 else ""
    if writer == backend_name or writer not in BACKENDS:
        return ""
    try:
        config = Bitstream.from_bytes(data, writer).header.get("config")
    except CodecError:
        return ""
    hint = _cards_for_stream(writer, config, directory) if isinstance(config, dict) else ""
    return f"; decode it with the card that wrote it{hint}" if hint else ""


def _warn_content(path: str, content) -> None:
    """Silent, constant and clipped input still round-trips; say what its numbers are worth."""
    if content.problem and content.problem != "too short":
        print(f"evalkit: warning: {path}: {content.reason}; its delay cannot be measured", file=sys.stderr)
    if content.warning:
        print(f"evalkit: warning: {path}: {content.warning}", file=sys.stderr)


def _stream_rate(data: bytes, card) -> int | None:
    """The rate a card that follows its input's rate wrote into the bitstream's header."""
    from ..codecs import BACKENDS, Bitstream
    from ..errors import CodecError

    try:
        rate = Bitstream.from_bytes(data, BACKENDS.get(card.backend).backend).header.get("sample_rate")
    except CodecError:
        return None  # the decoder itself will say what is wrong with the bytes
    return rate if isinstance(rate, int) else None


def _kbps(bitrate: float | None) -> str:
    return "n/a" if bitrate is None else f"{bitrate / 1000:.2f} kbit/s"


def cmd_metrics(args) -> int:
    """Table of every registered metric and whether it can run here."""
    from ..metrics import METRICS
    from ..text_tables import format_table

    rows = []
    for name in METRICS.names():
        entry = METRICS.get(name)
        spec, missing = entry.spec, entry.unavailable()
        rates = ",".join(str(r) for r in spec.sample_rates) if spec.sample_rates else "any"
        rows.append(
            [
                name,
                ",".join(spec.outputs),
                "yes" if spec.needs_reference else "no",
                "higher" if spec.higher_is_better else "lower",
                rates,
                "no: " + missing if missing else "yes",
            ]
        )
    print(format_table(["name", "outputs", "reference", "better", "rates_hz", "available"], rows))
    return 0


def cmd_demo(args) -> int:
    """Round-trip the bundled demo corpus through every available codec card."""
    from ..demo_pipeline import run_demo

    return run_demo(print, cards_dir=args.cards, limit=args.limit, score=not args.no_score)


def cmd_train(args) -> int:
    """Train (or resume) a neural codec; exports its weights and prints their sha256."""
    from ..errors import UnavailableError
    from ..neural.codec import torch_missing

    if torch_missing():
        raise UnavailableError(torch_missing())
    from ..neural.train import train

    train(args.config, steps=args.steps, max_minutes=args.max_minutes)
    return 0
