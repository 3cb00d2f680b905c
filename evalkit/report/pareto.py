"""Quality against cost: per-codec points (kbps, latency, complexity) and their Pareto fronts.

Complexity comes from `evalkit profile` (table `profiles`: single-thread encode + decode real-time
factor) when it has profiled the codec; otherwise from the run's own round trips, which were timed
beside other work and are only indicative; `complexity_source` says which.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from .codecinfo import REFERENCE_FAMILIES, higher_is_better
from .data import RunData, table_exists
from .leaderboard import current_results

__all__ = [
    "read_profiles",
    "complexity_table",
    "quality_points",
    "pareto_front",
    "mark_front",
    "NO_PROFILES",
    "COMPLEXITY_COLUMNS",
]

NO_PROFILES = (
    "no profiles yet: run `evalkit profile --all` for single-thread complexity; shown meanwhile: "
    "the run's own encode/decode timings (not isolated, indicative only)"
)
COMPLEXITY_COLUMNS = ["codec", "complexity_rtf", "macs_per_s", "complexity_source"]
_PROFILE_NEEDS = {"codec", "codec_hash", "encode_rtf", "decode_rtf", "created_at"}


def read_profiles(engine: Engine) -> pd.DataFrame | None:
    """The `profiles` table as stored, or None when it is absent, empty or lacks the columns used."""
    if not table_exists(engine, "profiles"):
        return None
    with engine.connect() as connection:
        frame = pd.read_sql(text("SELECT * FROM profiles"), connection)
    if frame.empty or not _PROFILE_NEEDS <= set(frame.columns):
        return None
    return frame.sort_values("created_at", kind="stable")


def complexity_table(engine: Engine, run: RunData) -> tuple[pd.DataFrame, str | None]:
    """Per codec: enc+dec real-time factor and MACs/s, and where they come from; plus a note if partial."""
    profiles = read_profiles(engine)
    measured = _run_rtf(run)
    rows = []
    for codec, codec_hash in _configs(run):
        row = _from_profile(profiles, codec, codec_hash) if profiles is not None else None
        rows.append(
            row
            or {
                "codec": codec,
                "complexity_rtf": measured.get(codec, np.nan),
                "macs_per_s": np.nan,
                "complexity_source": "run round trips (not isolated)",
            }
        )
    table = pd.DataFrame(rows, columns=COMPLEXITY_COLUMNS)
    missing = int((~table["complexity_source"].str.startswith("profile")).sum())
    note = (
        NO_PROFILES
        if profiles is None
        else (f"{missing} codec(s) not profiled: run `evalkit profile --codec NAME`" if missing else None)
    )
    return table, note


def quality_points(
    board: pd.DataFrame, codecs: pd.DataFrame, complexity: pd.DataFrame | None = None, keep_reference: bool = False
) -> pd.DataFrame:
    """One row per codec x metric: mean, CI, family, measured kbps, latency (and complexity)."""
    points = board.merge(codecs.drop(columns=["family"]), on="codec", how="left")
    if complexity is not None:
        points = points.merge(complexity, on="codec", how="left")
    if not keep_reference:
        points = points[~points["family"].isin(REFERENCE_FAMILIES)]
    return points.reset_index(drop=True)


def pareto_front(cost: np.ndarray, quality: np.ndarray, higher_better: bool = True) -> np.ndarray:
    """Mask of the points no other point beats: no more cost and no worse quality, one strictly."""
    cost = np.asarray(cost, dtype=float)
    quality = np.asarray(quality, dtype=float) * (1 if higher_better else -1)
    valid = np.isfinite(cost) & np.isfinite(quality)
    front = np.zeros(len(cost), dtype=bool)
    for i in np.flatnonzero(valid):
        others = valid & (cost <= cost[i]) & (quality >= quality[i]) & ((cost < cost[i]) | (quality > quality[i]))
        front[i] = not others.any()
    return front


def mark_front(points: pd.DataFrame, cost_column: str) -> pd.DataFrame:
    """`points` with a boolean `pareto` column, computed per metric against `cost_column`."""
    marked = []
    for metric, group in points.groupby("metric", sort=False):
        mask = pareto_front(group[cost_column].to_numpy(float), group["mean"].to_numpy(float), higher_is_better(metric))
        marked.append(group.assign(pareto=mask))
    return pd.concat(marked, ignore_index=True) if marked else points.assign(pareto=False)


def _configs(run: RunData) -> list[tuple[str, str]]:
    current = current_results(run.results)
    return sorted(set(zip(current["codec"], current["codec_hash"])))


def _run_rtf(run: RunData) -> dict[str, float]:
    trips = current_results(run.roundtrips)
    trips = trips[trips["status"] == "ok"]
    seconds = trips.groupby("codec")[["encode_seconds", "decode_seconds", "duration"]].sum()
    return ((seconds["encode_seconds"] + seconds["decode_seconds"]) / seconds["duration"]).to_dict()


def _from_profile(profiles: pd.DataFrame, codec: str, codec_hash: str) -> dict | None:
    mine = profiles[profiles["codec"] == codec]
    exact = mine[mine["codec_hash"] == codec_hash]
    pick, source = (exact, "profile") if not exact.empty else (mine, "profile (earlier card configuration)")
    if pick.empty:
        return None
    row = pick.iloc[-1]  # newest
    macs = sum(
        float(row.get(c)) for c in ("macs_encoder_per_s", "macs_decoder_per_s") if c in row and pd.notna(row.get(c))
    )
    return {
        "codec": codec,
        "complexity_rtf": float(row["encode_rtf"]) + float(row["decode_rtf"]),
        "macs_per_s": macs or np.nan,
        "complexity_source": source,
    }
