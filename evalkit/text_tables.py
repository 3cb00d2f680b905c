"""Plain-text tables for the terminal."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .cards import Card
from .errors import EvalkitError, terminal_safe

__all__ = [
    "format_table",
    "codec_table",
    "leaderboard_table",
    "misalignment_warnings",
    "warning_lines",
    "alignment_lines",
    "failure_summary",
    "item_table",
    "FAILURE_SHARE",
]

FAILURE_SHARE = 0.10  # above this share of failed rows, a run ends with a loud summary of why


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned text columns sized to their widest cell."""
    cells = [[terminal_safe(str(c)) for c in header]] + [[terminal_safe(str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def codec_table(cards: dict[str, Card], show_reasons: bool = False) -> str:
    """Name, family, availability, rate, nominal bitrate, algorithmic latency and source per card
    (with `show_reasons`, also the card's folder and the full reason a card is unavailable)."""
    rows = []
    for name, card in sorted(cards.items()):
        reason = card.unavailable()
        source = f"{card.source} ({card.path.parent})" if show_reasons and card.path else card.source
        if reason:
            rows.append(
                [name, card.backend, "no", "", "", "", source, reason if show_reasons else reason.split(";")[0]]
            )
            continue
        try:
            info = card.build().info
        except EvalkitError as err:  # one card's bad parameters must not hide the others
            rows.append([name, card.backend, "no", "", "", "", source, str(err) if show_reasons else "bad parameters"])
            continue
        kbps = "" if info.nominal_bitrate is None or card.follows_item_rate else f"{info.nominal_bitrate / 1000:g}"
        rate = "item" if card.follows_item_rate else str(info.sample_rate)
        note = "" if info.streaming else "needs the whole signal"  # its latency column is a lower bound
        rows.append([name, info.family, "yes", rate, kbps, f"{info.algorithmic_latency_ms:.1f}", source, note])
    available = sum(1 for r in rows if r[2] == "yes")
    families = len({r[1] for r in rows if r[2] == "yes"})
    table = format_table(["name", "family", "available", "rate_hz", "kbps", "latency_ms", "source", "note"], rows)
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
        interval = f" ±{half:.2g}" if half == half else ""  # one item has no interval: the mean alone, never "±nan"
        text = "-" if row.mean != row.mean else f"{row.mean:.3g}{interval}"
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
    return [
        f"warning: {row.codec}: measured delay differs from the declared {row.declared} samples on "
        f"{row.misaligned} of {row.checked} items (median {row.measured_median:g}); its output was "
        "re-aligned by the measured lag before scoring: correct the codec's declared latency (lookahead_samples)"
        for row in checks.itertuples()
        if row.misaligned
    ]


def warning_lines(warnings: dict, shown: int = 5) -> list[str]:
    """One line per stored run warning ({key: {"text", "items"}}), naming its first items."""
    lines = []
    for entry in sorted(warnings.values(), key=lambda e: e["text"]):
        items = entry.get("items", [])
        more = f", ... ({len(items)} in all)" if len(items) > shown else ""
        lines.append(f"warning: {entry['text']}" + (f": {', '.join(items[:shown])}{more}" if items else ""))
    return [terminal_safe(line) for line in lines]


def alignment_lines(frame) -> list[str]:
    """Per condition whose output was shifted or changed length: the lag and length change found."""
    if frame.empty or "lag" not in frame:
        return []
    pairs = frame.dropna(subset=["lag"]).drop_duplicates(["codec", "item_id"])
    lines = []
    for codec, group in pairs.groupby("codec", sort=True):
        lag, change, rate = group["lag"].astype(float), group["length_change"].astype(float), group["native_rate"]
        if not (lag.any() or change.any()):
            continue
        ms = 1000 * lag / rate.astype(float)
        lines.append(
            f"alignment: {codec}: lag {_span(lag, 'samples')} ({_span(ms, 'ms')}), length change "
            f"{_span(change, 'samples')} over {len(group)} items"
        )
    return lines


def _span(values, unit: str) -> str:
    low, mid, high = values.min(), values.median(), values.max()
    digits = 0 if unit == "samples" else 2

    def fmt(v):
        return f"{v:+.{digits}f}"

    return f"{fmt(mid)} {unit}" if low == high else f"median {fmt(mid)} {unit}, {fmt(low)} to {fmt(high)}"


def failure_summary(frame, run: str) -> list[str]:
    """A loud block when more than FAILURE_SHARE of the rows failed: counts by reason (item ids
    folded into <item>, so one cause is one line), with the conditions and items concerned."""
    failed = frame[frame["status"] == "failed"] if not frame.empty else frame
    if frame.empty or len(failed) <= FAILURE_SHARE * len(frame):
        return []
    reasons = [_fold(str(r), str(i)) if i else str(r) for r, i in zip(failed["reason"], failed["item_id"])]
    groups = failed.assign(cause=reasons).groupby("cause")
    bar = "=" * 78
    lines = [
        bar,
        f"FAILED: {len(failed)} of {len(frame)} rows of run {run!r} ({100 * len(failed) / len(frame):.0f} %), "
        "by reason:",
    ]
    for cause, group in sorted(groups, key=lambda g: -len(g[1]))[:10]:
        codecs = ", ".join(sorted(group["codec"].unique())[:3])
        items = group["item_id"].nunique()
        lines.append(f"{len(group):>7}  {cause}  [{codecs}; {items} item{'s' if items != 1 else ''}]")
    if groups.ngroups > 10:
        lines.append(
            f"         ... and {groups.ngroups - 10} more reasons (evalkit results --run {run} --long --export)"
        )
    return [terminal_safe(line) for line in lines] + [bar]


def _fold(reason: str, item_id: str) -> str:
    """The reason with the item's id, where it stands as a name of its own, replaced by <item>
    (an id such as "a" must not change the words around it)."""
    return re.sub(rf"(?<![\w-]){re.escape(item_id)}(?![\w-])", "<item>", reason)


def item_table(frame) -> str:
    """Per item and condition: lag, length change and each metric's value (or its status)."""
    if frame.empty:
        return "no results"
    frame = frame.assign(cell=[f"{v:.3f}" if s == "ok" else s for v, s in zip(frame["value"], frame["status"])])
    wide = frame.pivot_table(index=["codec", "item_id"], columns="metric", values="cell", aggfunc="first")
    # Rows that failed before alignment (no file, say) carry no lag: every item may have.
    first = frame.reindex(columns=[*frame.columns.difference(["lag", "length_change"]), "lag", "length_change"])
    first = first.drop_duplicates(["codec", "item_id"]).set_index(["codec", "item_id"])
    metrics = list(dict.fromkeys(frame["metric"]))
    rows = []
    for (codec, item), row in wide.iterrows():
        lag, change = first.loc[(codec, item), "lag"], first.loc[(codec, item), "length_change"]
        rows.append([codec, item, _int(lag), _int(change)] + [row.get(m, "-") for m in metrics])
    return format_table(["codec", "item", "lag", "length_change"] + metrics, rows)


def _int(value) -> str:
    try:
        return f"{int(value):+d}"
    except (TypeError, ValueError):  # None, NaN, or pandas' NA from a stored run: no lag was measured
        return "-"
