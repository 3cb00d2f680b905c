"""Which omnibus test a test's ratings get, chosen by their design, and the pairwise contrasts.

Complete designs (every listener rated every condition on every item) get the repeated-measures
ANOVA with the Greenhouse-Geisser correction as their primary test and the linear mixed model
beside it; incomplete designs get the mixed model (the ANOVA would have to drop every listener
who skipped a cell). Pairwise contrasts always come from the mixed model, Holm-adjusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .anova import rm_anova
from .design import Design, detect_design
from .mixed import MixedModel, fit_mixed

__all__ = ["Omnibus", "omnibus", "OMNIBUS_COLUMNS"]

OMNIBUS_COLUMNS = ["test", "statistic", "df", "p", "note"]


@dataclass
class Omnibus:
    design: Design
    primary: str  # "rm-anova" or "mixed model"
    anova: pd.DataFrame | None = None
    model: MixedModel | None = None
    contrasts: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per omnibus test of the condition effect, the primary one first."""
        rows = []
        if self.anova is not None and "condition" in self.anova.index:
            row = self.anova.loc["condition"]
            rows.append(
                {
                    "test": "repeated-measures ANOVA (condition), Greenhouse-Geisser",
                    "statistic": f"F = {row['F']:.2f}",
                    "df": f"{row['eps_gg'] * row['df1']:.2f}, {row['eps_gg'] * row['df2']:.1f}",
                    "p": row["p_gg"],
                    "note": f"epsilon {row['eps_gg']:.3f}; uncorrected p {row['p']:.3g}",
                }
            )
        if self.model is not None:
            test = self.model.omnibus()
            variances = ", ".join(f"{k} {v:.1f}" for k, v in self.model.variances.items())
            rows.append(
                {
                    "test": "linear mixed model (condition fixed; listener, item random), Wald",
                    "statistic": f"χ² = {test['chi2']:.2f}",
                    "df": str(test["df"]),
                    "p": test["p"],
                    "note": f"variances: {variances}" + ("" if self.model.converged else "; did not converge"),
                }
            )
        if self.primary == "mixed model":
            rows.reverse()
        return pd.DataFrame(rows, columns=OMNIBUS_COLUMNS)


def omnibus(frame: pd.DataFrame, conditions: list[str] | None = None, correction: str = "holm") -> Omnibus:
    """Detect the design of tidy ratings, run the tests that apply, and the model's pairwise contrasts."""
    design = detect_design(frame)
    result = Omnibus(design, "rm-anova" if design.complete else "mixed model")
    if design.complete and design.listeners >= 2 and design.conditions >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):  # constant ratings: NaN, said below
            result.anova = rm_anova(frame)
        if not np.isfinite(result.anova.loc["condition", ["F", "eps_gg"]].astype(float)).all():
            result.notes.append(
                "the repeated-measures ANOVA is undefined here: the ratings do not vary within listeners"
            )
    elif not design.complete:
        result.notes.append(
            f"design {design.kind}: the repeated-measures ANOVA needs every cell rated, so the "
            "mixed model is the omnibus test"
        )
    try:
        result.model = fit_mixed(frame, conditions=conditions)
    except (ValueError, ArithmeticError) as err:  # e.g. a singular model on degenerate data
        result.notes.append(f"mixed model not fitted: {err}")
        result.primary = "rm-anova"
        return result
    result.notes += result.model.notes
    result.contrasts = result.model.contrasts(correction=correction)
    return result
