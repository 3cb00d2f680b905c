"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Iterable, Sequence

from .cards import Card

__all__ = ["format_table", "codec_table"]


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned text columns sized to their widest cell."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def codec_table(cards: dict[str, Card], show_reasons: bool = False) -> str:
    """Name, family, availability, rate, nominal bitrate and algorithmic latency per card."""
    rows = []
    for name, card in sorted(cards.items()):
        reason = card.unavailable()
        if reason:
            rows.append([name, card.backend, "no", "", "", "", reason if show_reasons else reason.split(";")[0]])
            continue
        info = card.build().info
        kbps = "" if info.nominal_bitrate is None else f"{info.nominal_bitrate / 1000:g}"
        rows.append([name, info.family, "yes", info.sample_rate, kbps, f"{info.algorithmic_latency_ms:.1f}", ""])
    available = sum(1 for r in rows if r[2] == "yes")
    families = len({r[1] for r in rows if r[2] == "yes"})
    table = format_table(["name", "family", "available", "rate_hz", "kbps", "latency_ms", "note"], rows)
    return f"{table}\n\n{available} of {len(rows)} codec cards available, {families} families"
