"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Iterable, Sequence

from .cards import Card

__all__ = ["format_table", "codec_table", "leaderboard_table", "misalignment_warnings"]


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


def leaderboard_table(summary, sort_by: str | None = None) -> str:
    """Codecs as rows, metrics as columns, each cell "mean ±half-CI"; best first by `sort_by`."""
    if summary.empty:
        return "no results"
    metrics = list(dict.fromkeys(summary.metric))
    sort_by = sort_by if sort_by in metrics else metrics[0]
    cells: dict[str, dict[str, str]] = {}
    means: dict[str, float] = {}
    for row in summary.itertuples():
        half = (row.ci_high - row.ci_low) / 2 if row.ci_high == row.ci_high else float("nan")
        text = "-" if row.mean != row.mean else f"{row.mean:.3g} ±{half:.2g}"
        if row.n_failed or row.n_skipped:
            text += f" ({row.n_ok}/{row.n_ok + row.n_failed + row.n_skipped})"
        cells.setdefault(row.codec, {})[row.metric] = text
        if row.metric == sort_by:
            means[row.codec] = row.mean
    order = sorted(cells, key=lambda c: -means.get(c, float("-inf")) if means.get(c) == means.get(c) else float("inf"))
    rows = [[codec] + [cells[codec].get(m, "-") for m in metrics] for codec in order]
    return format_table(["codec"] + metrics, rows)


def misalignment_warnings(checks) -> list[str]:
    """One line per codec in `checks` (store.delay_check) whose measured delay missed the declared
    one: its output was aligned by the declared delay, so its scores compare misaligned audio."""
    return [f"warning: {row.codec}: measured delay differs from the declared {row.declared} samples on "
            f"{row.misaligned} of {row.checked} items (median {row.measured_median:g}); its scores compare "
            "misaligned audio: correct the codec's declared latency (lookahead_samples)"
            for row in checks.itertuples() if row.misaligned]
