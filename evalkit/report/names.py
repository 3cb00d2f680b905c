"""How reports name things: display names and units of metrics, display names of codecs, metric ranges.

A metric shows as e.g. "PESQ-WB (MOS-LQO)"; a codec as its card's `display_name` (a sweep
variant adds its parameters: "Opus WB (24 kbit/s)"), else its id. A names file (YAML)
overrides either:

    codecs: {opus-16k-wb@bitrate=24000: "Opus 24k"}
    metrics: {pesq_wb: "PESQ"}

Ranges are what a metric can take; confidence intervals are clipped to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..config import read_document

__all__ = ["MetricName", "METRICS", "DisplayNames", "load_names", "metric_range", "metric_ranges"]


@dataclass(frozen=True)
class MetricName:
    label: str
    unit: str = ""
    low: float = -math.inf
    high: float = math.inf


METRICS = {
    "pesq_nb": MetricName("PESQ-NB", "MOS-LQO", 1.0, 4.55),
    "pesq_wb": MetricName("PESQ-WB", "MOS-LQO", 1.0, 4.644),  # P.862.2 mapping: 0.999 + 4 / (1 + e^-2.3287)
    "stoi": MetricName("STOI", "", 0.0, 1.0),
    "estoi": MetricName("ESTOI", "", -1.0, 1.0),
    "visqol_speech": MetricName("ViSQOL speech", "MOS-LQO", 1.0, 5.0),
    "visqol_audio": MetricName("ViSQOL audio", "MOS-LQO", 1.0, 5.0),
    "warpq": MetricName("WARP-Q", "", 0.0),
    "si_sdr": MetricName("SI-SDR", "dB"),
    "lsd": MetricName("LSD", "dB", 0.0),
    "mcd": MetricName("MCD", "dB", 0.0),
    "dnsmos_sig": MetricName("DNSMOS SIG", "MOS", 1.0, 5.0),
    "dnsmos_bak": MetricName("DNSMOS BAK", "MOS", 1.0, 5.0),
    "dnsmos_ovrl": MetricName("DNSMOS OVRL", "MOS", 1.0, 5.0),
    "dnsmos_p808": MetricName("DNSMOS P.808", "MOS", 1.0, 5.0),
    "per": MetricName("Phone error rate", "", 0.0),
    "hallucinations_per_min": MetricName("Hallucinations", "1/min", 0.0),
    "judged_fraction": MetricName("Judged fraction", "", 0.0, 1.0),
    "wer_asr": MetricName("WER (ASR mismatch)", "", 0.0),
    "cer_asr": MetricName("CER (ASR mismatch)", "", 0.0),
    "wer": MetricName("WER", "", 0.0),
    "cer": MetricName("CER", "", 0.0),
    "speaker_similarity": MetricName("Speaker similarity", "cosine", -1.0, 1.0),
    "f0_rmse_cents": MetricName("F0 RMSE", "cents", 0.0),
    "f0_corr": MetricName("F0 correlation", "", -1.0, 1.0),
    "vde": MetricName("Voicing decision error", "", 0.0, 1.0),
    "plcmos": MetricName("PLCMOS", "MOS", 1.0, 5.0),
    "pdnsmos_sig": MetricName("pDNSMOS SIG", "MOS", 1.0, 5.0),
    "pdnsmos_bak": MetricName("pDNSMOS BAK", "MOS", 1.0, 5.0),
    "pdnsmos_ovrl": MetricName("pDNSMOS OVRL", "MOS", 1.0, 5.0),
    "mcd_dtw": MetricName("MCD (DTW)", "dB", 0.0),
    "bitrate_kbps": MetricName("Bitrate", "kbit/s", 0.0),
    "encode_rtf": MetricName("Encode RTF", "", 0.0),
    "decode_rtf": MetricName("Decode RTF", "", 0.0),
    "mushra": MetricName("MUSHRA", "", 0.0, 100.0),
}


def metric_range(metric: str) -> tuple[float, float]:
    """(low, high) a metric's values can take; unbounded for metrics not listed."""
    name = METRICS.get(metric)
    return (name.low, name.high) if name else (-math.inf, math.inf)


def metric_ranges() -> dict[str, tuple[float, float]]:
    return {metric: (name.low, name.high) for metric, name in METRICS.items()}


@dataclass(frozen=True)
class DisplayNames:
    """Display names of codecs and metrics; ids without one show as themselves."""

    codecs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)

    def codec(self, codec: str) -> str:
        if codec in self.codecs:
            return self.codecs[codec]
        base, _, suffix = str(codec).partition("@")
        label = self.codecs.get(base) or _card_display_name(base) or base
        return f"{label} ({_params(suffix)})" if suffix else label

    def metric(self, metric: str, unit: bool = True) -> str:
        """'PESQ-WB (MOS-LQO)'; `unit=False` leaves the unit out."""
        known = METRICS.get(metric)
        label = self.metrics.get(metric) or (known.label if known else metric)
        return f"{label} ({known.unit})" if unit and known and known.unit else label


def load_names(path: str | Path | None) -> DisplayNames:
    """A names file (`codecs:` and `metrics:` mappings of id -> name); none given: the built-in names."""
    if path is None:
        return DisplayNames()
    document = read_document(Path(path), "names file")
    check = document.checker()
    data = check.mapping(document.data or {}, "", {"codecs", "metrics"})
    for key in ("codecs", "metrics"):
        entries = check.mapping(data.get(key) or {}, key, set(map(str, data.get(key) or {})))
        for name, label in entries.items():
            check.text(label, f"{key}.{name}", required=True)
    return DisplayNames(
        {str(k): v for k, v in (data.get("codecs") or {}).items()},
        {str(k): v for k, v in (data.get("metrics") or {}).items()},
    )


def _card_display_name(name: str) -> str | None:
    from .codecinfo import card_display_name

    return card_display_name(name)


def _params(suffix: str) -> str:
    """'bitrate=24000,complexity=5' -> 'bitrate 24 kbit/s, complexity 5'."""
    parts = []
    for part in suffix.split(","):
        key, _, value = part.partition("=")
        if key == "bitrate" and value.isdigit():
            parts.append(f"{int(value) / 1000:g} kbit/s")
        else:
            parts.append(f"{key} {value}".strip())
    return ", ".join(parts)
