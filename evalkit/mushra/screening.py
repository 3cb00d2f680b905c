"""Post-screening of assessors, ITU-R BS.1534-3 section 4.1.2.

An assessor is excluded who rates the hidden reference below 90 for more than 15 % of the items,
or the mid-range anchor above 90 for more than 15 % of the items. Items on which more than 25 % of
all assessors rate the mid anchor above 90 are left out of the anchor rule: there the anchor is
hard to tell from the reference (e.g. speech that ends at 8 kHz, against a 7 kHz anchor), so
rating it high says nothing about the assessor.

Ratings come as a tidy frame with columns participant, item, condition, score (ratings_frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .spec_parts import MID_ANCHOR, REFERENCE

__all__ = ["Screening", "screen"]


@dataclass(frozen=True)
class Screening:
    """Who stays, who goes and why; `table` has one row per assessor with both fractions."""

    kept: tuple[str, ...]
    excluded: dict[str, str]  # participant -> reason
    anchor_items_skipped: tuple[str, ...]
    table: pd.DataFrame

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The ratings of the kept assessors only."""
        return frame[frame["participant"].isin(self.kept)].reset_index(drop=True)


def screen(frame: pd.DataFrame, reference: str = REFERENCE, mid_anchor: str = MID_ANCHOR,
           threshold: float = 90.0, max_fraction: float = 0.15, anchor_item_fraction: float = 0.25) -> Screening:
    """Apply both BS.1534-3 rules; an assessor must exceed a fraction strictly to be excluded."""
    ref = _scores(frame, reference)
    anchor = _scores(frame, mid_anchor)
    high = anchor > threshold
    skipped = sorted(high.columns[high.mean(axis=0) > anchor_item_fraction]) if not anchor.empty else []
    eligible = high.drop(columns=skipped)
    table = pd.DataFrame(index=sorted(frame["participant"].unique()))
    table["reference_below"] = (ref < threshold).astype(float).where(ref.notna()).mean(axis=1)
    table["anchor_above"] = eligible.astype(float).where(anchor.drop(columns=skipped).notna()).mean(axis=1)
    table = table.fillna(0.0)
    table["reason"] = [_reason(row, threshold, max_fraction) for row in table.itertuples()]
    excluded = {p: r for p, r in table["reason"].items() if r}
    kept = tuple(p for p in table.index if p not in excluded)
    return Screening(kept, excluded, tuple(skipped), table.rename_axis("participant").reset_index())


def _scores(frame: pd.DataFrame, condition: str) -> pd.DataFrame:
    """participant x item scores of one condition (mean of repeats, NaN where not rated)."""
    rows = frame[frame["condition"] == condition]
    table = rows.pivot_table(index="participant", columns="item", values="score", aggfunc="mean")
    return table.reindex(sorted(frame["participant"].unique()))


def _reason(row, threshold: float, max_fraction: float) -> str:
    reasons = []
    if row.reference_below > max_fraction:
        reasons.append(f"hidden reference below {threshold:g} on {row.reference_below:.0%} of items")
    if row.anchor_above > max_fraction:
        reasons.append(f"mid anchor above {threshold:g} on {row.anchor_above:.0%} of items")
    return "; ".join(reasons)
