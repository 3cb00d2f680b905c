"""Post-screening of assessors, ITU-R BS.1534-3 section 4.1.2, with the rule and the conditions declared.

Rules: "bs1534-3" (the default) excludes an assessor who rates the hidden reference below 90 for
more than 15 % of the items, or the mid-range anchor above 90 for more than 15 % of the items;
"reference" applies the first rule only (common in published studies); "none" keeps everyone.
Items on which more than 25 % of all assessors rate the mid anchor above 90 are left out of the
anchor rule: there the anchor is hard to tell from the reference (e.g. speech that ends at 8 kHz,
against a 7 kHz anchor), so rating it high says nothing about the assessor.

A rule that names a condition the ratings do not have is an error, never a silent "keep all".
Ratings come as a tidy frame with columns participant, item, condition, score (ratings_frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import ConfigError
from ..listening.spec_parts import LOW_ANCHOR, MID_ANCHOR, REFERENCE

__all__ = ["RULES", "ScreeningConfig", "Screening", "screen", "DEFAULT_SCREENING"]

RULES = ("bs1534-3", "reference", "none")


@dataclass(frozen=True)
class ScreeningConfig:
    """Which rule, and which conditions are the hidden reference and the anchors (mid anchor among them)."""

    rule: str = "bs1534-3"
    reference: str | None = REFERENCE
    anchors: tuple[str, ...] = (LOW_ANCHOR, MID_ANCHOR)
    mid_anchor: str | None = MID_ANCHOR
    threshold: float = 90.0
    max_fraction: float = 0.15
    anchor_item_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"screening rule {self.rule!r} is not one of {', '.join(RULES)}")
        if self.rule != "none" and not self.reference:
            raise ConfigError(
                f"screening rule {self.rule!r} needs the hidden reference: declare it, or use rule 'none'"
            )
        if self.rule == "bs1534-3" and not self.mid_anchor:
            raise ConfigError(
                "screening rule 'bs1534-3' needs the mid anchor: declare it, or use rule 'reference' "
                "(hidden reference only) or 'none'"
            )

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "reference": self.reference,
            "anchors": list(self.anchors),
            "mid_anchor": self.mid_anchor,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> ScreeningConfig:
        data = dict(data or {})
        return cls(
            rule=data.get("rule", "bs1534-3"),
            reference=data.get("reference"),
            anchors=tuple(data.get("anchors") or ()),
            mid_anchor=data.get("mid_anchor"),
        )

    def check(self, conditions) -> None:
        """ConfigError when the rule names a condition that `conditions` lacks."""
        present = set(conditions)
        needed = {
            "none": [],
            "reference": [("hidden reference", self.reference)],
            "bs1534-3": [("hidden reference", self.reference), ("mid anchor", self.mid_anchor)],
        }[self.rule]
        for role, name in needed:
            if name not in present:
                raise ConfigError(
                    f"screening ({self.rule}): the {role} {name!r} is not a condition of these ratings "
                    f"(conditions: {', '.join(sorted(map(str, present))) or 'none'}); declare the "
                    "right one or choose another rule"
                )

    def describe(self) -> str:
        """The rule in words, for a methods section."""
        t, f = f"{self.threshold:g}", f"{self.max_fraction:.0%}"
        if self.rule == "none":
            return "no post-screening (every assessor kept)"
        text = (
            f"ITU-R BS.1534-3 post-screening: hidden reference ({self.reference}) below {t} on more than {f} of items"
        )
        if self.rule == "reference":
            return text + " (hidden-reference rule only)"
        return (
            text + f", or mid anchor ({self.mid_anchor}) above {t} on more than {f} of items (items where over "
            f"{self.anchor_item_fraction:.0%} of assessors rate it above {t} left out of that rule)"
        )


DEFAULT_SCREENING = ScreeningConfig()


@dataclass(frozen=True)
class Screening:
    """Who stays, who goes and why; `table` has one row per assessor with both fractions."""

    kept: tuple[str, ...]
    excluded: dict[str, str]  # participant -> reason
    anchor_items_skipped: tuple[str, ...]
    table: pd.DataFrame
    config: ScreeningConfig = field(default=DEFAULT_SCREENING)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The ratings of the kept assessors only."""
        return frame[frame["participant"].isin(self.kept)].reset_index(drop=True)

    def describe(self) -> str:
        """Rule and outcome in one sentence."""
        skipped = (
            f"; anchor rule skipped on items {', '.join(map(str, self.anchor_items_skipped))}"
            if self.anchor_items_skipped
            else ""
        )
        return f"{self.config.describe()}: {len(self.kept)} assessor(s) kept, {len(self.excluded)} excluded{skipped}"


def screen(
    frame: pd.DataFrame,
    reference: str = REFERENCE,
    mid_anchor: str | None = MID_ANCHOR,
    threshold: float = 90.0,
    max_fraction: float = 0.15,
    anchor_item_fraction: float = 0.25,
    rule: str = "bs1534-3",
    config: ScreeningConfig | None = None,
) -> Screening:
    """Apply `rule` (or `config`); an assessor must exceed a fraction strictly to be excluded."""
    config = config or ScreeningConfig(
        rule, reference, (mid_anchor,) if mid_anchor else (), mid_anchor, threshold, max_fraction, anchor_item_fraction
    )
    config.check(frame["condition"].unique())
    table = pd.DataFrame(index=pd.Index(sorted(frame["participant"].unique()), name="participant"))
    table["reference_below"], table["anchor_above"], skipped = 0.0, 0.0, []
    if config.rule != "none":
        ref = _scores(frame, config.reference)
        table["reference_below"] = (ref < config.threshold).astype(float).where(ref.notna()).mean(axis=1).fillna(0.0)
    if config.rule == "bs1534-3":
        table["anchor_above"], skipped = _anchor_fractions(frame, config)
    table["reason"] = [_reason(row, config) for row in table.itertuples()]
    excluded = {p: r for p, r in table["reason"].items() if r}
    kept = tuple(p for p in table.index if p not in excluded)
    return Screening(kept, excluded, tuple(skipped), table.reset_index(), config)


def _anchor_fractions(frame: pd.DataFrame, config: ScreeningConfig) -> tuple[pd.Series, list]:
    anchor = _scores(frame, config.mid_anchor)
    high = anchor > config.threshold
    rated = anchor.notna()
    share = high.sum(axis=0) / rated.sum(axis=0).clip(lower=1)  # of the assessors who rated the item
    skipped = sorted(share.index[share > config.anchor_item_fraction])
    eligible = high.drop(columns=skipped).astype(float).where(rated.drop(columns=skipped))
    return eligible.mean(axis=1).fillna(0.0), skipped


def _scores(frame: pd.DataFrame, condition: str) -> pd.DataFrame:
    """participant x item scores of one condition (mean of repeats, NaN where not rated)."""
    rows = frame[frame["condition"] == condition]
    table = rows.pivot_table(index="participant", columns="item", values="score", aggfunc="mean")
    return table.reindex(sorted(frame["participant"].unique()))


def _reason(row, config: ScreeningConfig) -> str:
    reasons = []
    if row.reference_below > config.max_fraction:
        reasons.append(f"hidden reference below {config.threshold:g} on {row.reference_below:.0%} of items")
    if row.anchor_above > config.max_fraction:
        reasons.append(f"mid anchor above {config.threshold:g} on {row.anchor_above:.0%} of items")
    return "; ".join(reasons)
