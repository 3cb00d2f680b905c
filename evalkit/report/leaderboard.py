"""Leaderboard data: codec configuration x metric, mean with a 95 % CI, filtered and sorted.

The means and intervals are `evalkit.store.mean_ci` over the same rows `evalkit.store.summary`
reads (t intervals clipped to each metric's range; kbit/s duration-weighted), so an unfiltered
leaderboard equals the stored summary number for number. `ci="bootstrap"` gives percentile
intervals over items instead (seeded), which stay inside the range by construction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..store import mean_ci
from ..store.run_results import DURATION_WEIGHTED
from .codecinfo import COST_METRICS, codec_meta, higher_is_better
from .data import UNKNOWN_SPEAKER, RunData
from .names import metric_range

__all__ = [
    "current_results",
    "coverage_gaps",
    "filter_results",
    "metric_order",
    "codec_table",
    "leaderboard",
    "leaderboard_wide",
    "BOARD_COLUMNS",
    "CI_METHODS",
    "SMALL_N",
]

BOARD_COLUMNS = [
    "codec",
    "codec_hash",
    "family",
    "metric",
    "metric_version",
    "higher_is_better",
    "n_ok",
    "n_failed",
    "n_skipped",
    "mean",
    "std",
    "ci_low",
    "ci_high",
]
CI_METHODS = ("t", "bootstrap")
SMALL_N = 5  # fewer items than this: the interval says little, and tables flag it


def current_results(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each codec's newest configuration (and, for results, each metric's newest version).

    Incremental reruns keep the rows of an edited card or an upgraded metric; mixing them would
    average two different things under one name. Works on results and round-trip frames.
    """
    if frame.empty:
        return frame
    ordered = frame.sort_values("created_at", kind="stable")
    keep = frame["codec_hash"].eq(frame["codec"].map(ordered.groupby("codec")["codec_hash"].last()))
    if "metric" in frame:
        newest = ordered.groupby("metric")["metric_version"].last()
        keep &= frame["metric_version"].eq(frame["metric"].map(newest))
    return frame[keep].reset_index(drop=True)


def coverage_gaps(frame: pd.DataFrame, shown: int = 3) -> list[str]:
    """A sentence per codec that holds no row at all for some of the run's items (a run stopped part
    way, or items added since): its means are over other items than the rest's."""
    if frame.empty:
        return []
    items = set(frame["item_id"])
    gaps = []
    for codec, group in frame.groupby("codec", sort=True):
        missing = sorted(items - set(group["item_id"]))
        if missing:
            named = ", ".join(missing[:shown]) + (", ..." if len(missing) > shown else "")
            gaps.append(
                f"{codec} has no row for {len(missing)} of the run's {len(items)} items ({named}): its means "
                "cover other items than the other codecs'; run the experiment again to complete it"
            )
    return gaps


def filter_results(
    run: RunData,
    datasets: Iterable[str] | None = None,
    speakers: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The run's current rows restricted to datasets, speakers (from its manifest) and metrics."""
    frame = current_results(run.results)
    if datasets:
        frame = frame[frame["dataset"].isin(list(datasets))]
    if speakers:
        speaker = frame["item_id"].map(run.speakers).fillna(UNKNOWN_SPEAKER)
        frame = frame[speaker.isin(list(speakers))]
    if metrics:
        frame = frame[frame["metric"].isin(list(metrics))]
    return frame.reset_index(drop=True)


def metric_order(run: RunData, include_cost: bool = False) -> list[str]:
    """Metrics in the order the experiment listed them, then any others; cost rows last if wanted."""
    present = list(dict.fromkeys(run.results["metric"]))
    listed = [m for name in run.config.get("metrics", []) for m in _outputs(name) if m in present]
    rest = sorted(m for m in present if m not in listed and m not in COST_METRICS)
    cost = [m for m in COST_METRICS if m in present] if include_cost else []
    return list(dict.fromkeys(listed + rest)) + cost


def run_card_folders(run: RunData) -> tuple[str, ...] | None:
    """The card folders the run's experiment added (`cards:`), those still there, resolved against its
    file's folder; None when it added none."""
    folders = [run_base(run) / str(folder) for folder in run.config.get("cards") or []]
    return tuple(str(folder) for folder in folders if folder.is_dir()) or None


def run_base(run: RunData) -> Path:
    """The folder the run's experiment file was in: its relative paths start there."""
    return Path(run.config.get("resolved", {}).get("base") or ".")


def condition_entry(run: RunData, codec: str) -> dict | None:
    """The experiment's entry for `codec` when it is a condition of files made elsewhere, else None."""
    entries = run.config.get("codecs") or []  # sweeps are {card, sweep}: only conditions have a name
    return next((c for c in entries if isinstance(c, dict) and c.get("name") == codec), None)


def codec_family(run: RunData, codec: str) -> str:
    """The codec's family; a condition of files made elsewhere is "decoded files" (or, when a card
    decoded its bitstreams, that card's family)."""
    entry = condition_entry(run, codec)
    if entry is None:
        return codec_meta(codec, run_card_folders(run)).family
    card = entry.get("card")
    return codec_meta(card, run_card_folders(run)).family if isinstance(card, str) else "decoded files"


def codec_table(run: RunData, items: Iterable[str] | None = None) -> pd.DataFrame:
    """Per codec: family, nominal and measured kbps (duration-weighted), algorithmic latency."""
    trips = current_results(run.roundtrips)
    trips = trips[trips["status"] == "ok"]
    if items is not None:
        trips = trips[trips["item_id"].isin(list(items))]
    rows = []
    for codec in sorted(set(run.results["codec"])):
        meta = codec_meta(codec, run_card_folders(run))
        # Files made elsewhere with neither bitstreams nor a declared bitrate have none.
        mine = trips[(trips["codec"] == codec) & (trips["duration"] > 0) & trips["bitrate"].notna()]
        kbps = mean_ci(mine["bitrate"] / 1000, weights=mine["duration"])[0]
        rows.append(
            {
                "codec": codec,
                "family": codec_family(run, codec),
                "nominal_kbps": meta.nominal_kbps,
                "measured_kbps": kbps,
                "latency_ms": meta.latency_ms,
            }
        )
    return pd.DataFrame(rows, columns=["codec", "family", "nominal_kbps", "measured_kbps", "latency_ms"])


def leaderboard(
    run: RunData,
    datasets: Iterable[str] | None = None,
    speakers: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    include_cost: bool = False,
    confidence: float = 0.95,
    ci: str = "t",
) -> pd.DataFrame:
    """Long form, one row per codec x metric: status counts, mean, std and CI (BOARD_COLUMNS)."""
    if ci not in CI_METHODS:
        raise ConfigError(f"unknown interval {ci!r}; choose one of {', '.join(CI_METHODS)}")
    frame = filter_results(run, datasets, speakers, metrics)
    if not include_cost:
        frame = frame[~frame["metric"].isin(COST_METRICS)]
    frame = _with_durations(frame, run)
    rows = [
        _stats(key, group, confidence, ci)
        for key, group in frame.groupby(["codec", "codec_hash", "metric", "metric_version"], sort=True)
    ]
    board = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    board["family"] = [codec_family(run, codec) for codec in board["codec"]]
    rank = {metric: index for index, metric in enumerate(metric_order(run, include_cost=True))}
    return board.sort_values("metric", key=lambda col: col.map(rank), kind="stable", ignore_index=True)


def leaderboard_wide(
    board: pd.DataFrame, codecs: pd.DataFrame, sort_by: str | None = None, ascending: bool | None = None
) -> pd.DataFrame:
    """One row per codec: family, kbps, latency, then `<metric>` mean and `<metric> ±` half CI.

    Sorted by `sort_by` (default: the first metric), best first unless `ascending` says otherwise.
    """
    metrics = list(dict.fromkeys(board["metric"]))
    wide = codecs.set_index("codec")[["family", "measured_kbps", "nominal_kbps", "latency_ms"]].copy()
    for metric in metrics:
        rows = board[board["metric"] == metric].set_index("codec")
        wide[metric] = rows["mean"]
        wide[f"{metric} ±"] = (rows["ci_high"] - rows["ci_low"]) / 2
    wide = wide.reset_index()
    sort_by = sort_by if sort_by in metrics else (metrics[0] if metrics else None)
    if sort_by is None:
        return wide
    ascending = (not higher_is_better(sort_by)) if ascending is None else ascending
    return wide.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable", ignore_index=True)


def _stats(key: tuple, group: pd.DataFrame, confidence: float, ci: str) -> dict:
    codec, codec_hash, metric, version = key
    counts = group["status"].value_counts()
    ok = group[group["status"] == "ok"]
    weights = ok["duration"] if metric in DURATION_WEIGHTED and (ok["duration"] > 0).all() else None
    mean, std, low, high = mean_ci(ok["value"], confidence, metric_range(metric), weights)
    if ci == "bootstrap":
        low, high = _bootstrap(
            ok["value"].to_numpy(float), None if weights is None else weights.to_numpy(float), confidence
        )
    return {
        "codec": codec,
        "codec_hash": codec_hash,
        "family": None,  # filled in by leaderboard(), which knows the run's card folders
        "metric": metric,
        "metric_version": version,
        "higher_is_better": higher_is_better(metric),
        "n_ok": int(counts.get("ok", 0)),
        "n_failed": int(counts.get("failed", 0)),
        "n_skipped": int(counts.get("skipped", 0)),
        "mean": mean,
        "std": std,
        "ci_low": low,
        "ci_high": high,
    }


def _with_durations(frame: pd.DataFrame, run: RunData) -> pd.DataFrame:
    """Each row with its item's duration (seconds of input audio), for duration-weighted kbit/s."""
    trips = run.roundtrips
    if frame.empty or trips.empty or "duration" not in trips:
        return frame.assign(duration=np.nan)
    durations = trips[["item_id", "codec", "codec_hash", "duration"]].drop_duplicates(
        ["item_id", "codec", "codec_hash"]
    )
    return frame.merge(durations, on=["item_id", "codec", "codec_hash"], how="left")


def _bootstrap(
    values: np.ndarray, weights: np.ndarray | None, confidence: float, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the (weighted) mean over items resampled with replacement."""
    if len(values) < 2:
        return math.nan, math.nan
    order = np.argsort(values, kind="stable")  # the result cannot depend on row order
    values = values[order]
    weights = np.ones_like(values) if weights is None else weights[order]
    picks = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    means = (values[picks] * weights[picks]).sum(axis=1) / weights[picks].sum(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def _outputs(name: str) -> tuple[str, ...]:
    from ..metrics import METRICS

    try:
        return METRICS.get(name).spec.outputs
    except ConfigError:  # a metric no longer registered keeps its stored name
        return (name,)
