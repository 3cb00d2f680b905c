"""Codec profiles as text: one profile as a block of lines, many as a table, a loss curve as a grid."""

from __future__ import annotations

import statistics
from collections import defaultdict

from ..errors import ConfigError
from ..text_tables import format_table
from .curves import CurvePoint
from .profiler import Profile, ProfileRun

__all__ = ["parse_rates", "profile_text", "profile_table", "curve_table"]


def parse_rates(text: str) -> list[float]:
    """ "1,3,5" (percent) -> [0.01, 0.03, 0.05]; each must lie strictly between 0 and 100."""
    try:
        rates = [float(part) / 100 for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--loss-rates takes percentages separated by commas (e.g. 1,3,10), got {text!r}") from None
    if not rates or not all(0 < rate < 1 for rate in rates):
        raise ConfigError(f"--loss-rates: every rate must lie between 0 and 100 %, got {text!r}")
    return rates


def profile_text(run: ProfileRun) -> str:
    """A profile as a block of "key: value" lines, then its loss curve."""
    p = run.profile
    lines = [
        f"{p.codec} ({p.family}, {p.sample_rate} Hz, {p.codec_version})",
        f"  complexity   {_complexity(p)}",
        f"  speed        encode RTF {p.encode_rtf:.5f}, decode RTF {p.decode_rtf:.5f} "
        f"(warm: after one untimed run, so no loading in them; one thread, median of {p.repeats})",
        f"  energy       {p.encode_cpu_s_per_hour:.1f} + {p.decode_cpu_s_per_hour:.1f} CPU-s per hour of audio "
        "(encode + decode)",
        f"  memory       peak RSS {p.peak_memory_mb:.0f} MB, working {p.working_memory_mb:.1f} MB",
        f"  latency      {_latency(p)}",
        f"  streaming    {'yes' if p.streaming else 'no'}; concealment: {p.concealment}",
    ]
    if run.curve:
        lines += ["", _indent(curve_table(run.curve))]
    return "\n".join(lines)


def profile_table(profiles: list[Profile]) -> str:
    """One line per profile: the numbers to compare across codecs."""
    header = [
        "codec",
        "family",
        "enc_rtf",
        "dec_rtf",
        "cpu_s_per_h",
        "peak_mb",
        "macs_per_s",
        "params",
        "latency_ms",
        "measured_ms",
        "streaming",
    ]
    rows = [
        [
            p.codec,
            p.family,
            f"{p.encode_rtf:.5f}",
            f"{p.decode_rtf:.5f}",
            f"{p.encode_cpu_s_per_hour + p.decode_cpu_s_per_hour:.1f}",
            f"{p.peak_memory_mb:.0f}",
            _macs(p),
            _params(p),
            f"{p.declared_latency_ms:.2f}",
            _measured(p),
            "yes" if p.streaming else "no",
        ]
        for p in profiles
    ]
    return format_table(header, rows)


def curve_table(points: list[CurvePoint]) -> str:
    """Mean score per loss model (rows) and loss rate (columns), over seeds; "-" where none is ok."""
    groups: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for point in points:
        cell = groups[(point.metric, point.loss_model)][point.loss_rate]
        if point.status == "ok":
            cell.append(point.value)
    rates = sorted({point.loss_rate for point in points})
    rows = [[metric, model] + [_mean(cells.get(rate)) for rate in rates] for (metric, model), cells in groups.items()]
    return format_table(["metric", "loss"] + [f"{100 * rate:g}%" for rate in rates], rows)


def _complexity(p: Profile) -> str:
    if p.macs_encoder_per_s is None and p.macs_decoder_per_s is None:
        return "no torch modules (DSP): see CPU time"
    return f"{_macs(p)} MAC/s (encoder/decoder), {_params(p)} parameters"


def _latency(p: Profile) -> str:
    flag = {True: "ok", False: "MISMATCH", None: "not measurable (silent output)"}[p.latency_ok]
    return (
        f"{p.declared_latency_ms:.2f} ms algorithmic (frame {p.frame_samples} + lookahead {p.declared_delay} "
        f"samples); measured lookahead {p.measured_delay if p.measured_delay is not None else '-'}: {flag}"
    )


def _macs(p: Profile) -> str:
    return "/".join("-" if v is None else f"{v / 1e6:.1f}M" for v in (p.macs_encoder_per_s, p.macs_decoder_per_s))


def _params(p: Profile) -> str:
    return "/".join("-" if v is None else f"{v / 1e6:.2f}M" for v in (p.params_encoder, p.params_decoder))


def _measured(p: Profile) -> str:
    text = "-" if p.measured_latency_ms is None else f"{p.measured_latency_ms:.2f}"
    return text + (" MISMATCH" if p.latency_ok is False else "")


def _mean(values: list[float] | None) -> str:
    return f"{statistics.fmean(values):.2f}" if values else "-"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
