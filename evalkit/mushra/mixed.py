"""A linear mixed model of MUSHRA ratings: condition fixed; listener and item random and crossed.

score = mean(condition) + u(listener) + v(item) + e, fitted by REML with statsmodels' MixedLM
(one group holding every rating, the two random intercepts as variance components: the way
statsmodels fits crossed effects). Unlike the repeated-measures ANOVA it needs no complete
cube, so it is the omnibus test of incomplete designs (each listener rates a subset of items).

The fixed effects are the condition means themselves (cell-means coding), so a contrast is a
difference of two coefficients. Tests are Wald tests on the model covariance: the omnibus
chi-square of "all condition means equal" with k - 1 degrees of freedom, and pairwise z tests
with Holm-adjusted p-values. Intervals are Wald intervals (normal quantiles), as statsmodels'.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .stats import hochberg, holm

__all__ = ["MixedModel", "fit_mixed", "MEANS_COLUMNS", "CONTRAST_COLUMNS", "MAX_DESIGN_CELLS"]

MAX_DESIGN_CELLS = 50_000_000  # 0.4 GB of float64 random-effect design; far beyond any MUSHRA panel

MEANS_COLUMNS = ["condition", "n", "estimate", "se", "ci_low", "ci_high"]
CONTRAST_COLUMNS = ["a", "b", "estimate", "se", "z", "ci_low", "ci_high", "p", "p_adjusted", "significant"]


@dataclass
class MixedModel:
    """A fitted model: condition means, covariance, variance components and the omnibus test."""

    conditions: list[str]
    coefficients: np.ndarray
    covariance: np.ndarray
    counts: np.ndarray
    variances: dict[str, float]
    converged: bool
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)

    def means(self) -> pd.DataFrame:
        """Per condition: model-estimated mean with its Wald interval (listener and item variance included)."""
        se = np.sqrt(np.diag(self.covariance))
        half = stats.norm.ppf(0.5 + self.confidence / 2) * se
        return pd.DataFrame(
            {
                "condition": self.conditions,
                "n": self.counts,
                "estimate": self.coefficients,
                "se": se,
                "ci_low": self.coefficients - half,
                "ci_high": self.coefficients + half,
            },
            columns=MEANS_COLUMNS,
        )

    def omnibus(self) -> dict[str, float]:
        """Wald test that every condition mean is equal: chi2, df, p."""
        k = len(self.conditions)
        contrast = np.hstack([np.eye(k - 1), -np.ones((k - 1, 1))])
        difference = contrast @ self.coefficients
        chi2 = float(difference @ np.linalg.solve(contrast @ self.covariance @ contrast.T, difference))
        return {"chi2": chi2, "df": k - 1, "p": float(stats.chi2.sf(chi2, k - 1))}

    def contrasts(
        self, pairs: list[tuple[str, str]] | None = None, correction: str = "holm", alpha: float = 0.05
    ) -> pd.DataFrame:
        """Pairwise differences a - b with Wald z tests, intervals, and p-values adjusted over the pairs."""
        index = {name: i for i, name in enumerate(self.conditions)}
        pairs = pairs or list(itertools.combinations(self.conditions, 2))
        z_crit = stats.norm.ppf(0.5 + self.confidence / 2)
        rows = []
        for a, b in pairs:
            vector = np.zeros(len(self.conditions))
            vector[index[a]], vector[index[b]] = 1.0, -1.0
            estimate, se = float(vector @ self.coefficients), float(np.sqrt(vector @ self.covariance @ vector))
            z = estimate / se if se > 0 else np.inf * np.sign(estimate)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "estimate": estimate,
                    "se": se,
                    "z": z,
                    "ci_low": estimate - z_crit * se,
                    "ci_high": estimate + z_crit * se,
                    "p": float(2 * stats.norm.sf(abs(z))),
                }
            )
        table = pd.DataFrame(rows, columns=CONTRAST_COLUMNS[:-2])
        table["p_adjusted"] = {"holm": holm, "hochberg": hochberg}[correction](table["p"].to_numpy())
        table["significant"] = table["p_adjusted"] < alpha
        return table


def fit_mixed(frame: pd.DataFrame, confidence: float = 0.95, conditions: list[str] | None = None) -> MixedModel:
    """Fit tidy ratings (participant, item, condition, score); ValueError when there is nothing to compare."""
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    conditions = [c for c in (conditions or sorted(frame["condition"].unique())) if c in set(frame["condition"])]
    if len(conditions) < 2:
        raise ValueError(f"a mixed model needs ratings of at least 2 conditions (have {len(conditions)})")
    frame = frame[frame["condition"].isin(conditions)]
    cells = len(frame) * (frame["participant"].nunique() + frame["item"].nunique())
    if cells > MAX_DESIGN_CELLS:  # statsmodels holds each random effect as a dense ratings x levels matrix
        raise ValueError(
            f"{len(frame)} ratings of {frame['participant'].nunique()} listeners and {frame['item'].nunique()} "
            f"items would need {cells * 8 / 1e9:.1f} GB of design matrices (at most {MAX_DESIGN_CELLS * 8 / 1e9:g} GB)"
        )
    codes = pd.Categorical(frame["condition"], categories=conditions).codes
    exog = np.eye(len(conditions))[codes]
    names, mats, notes = [], [], []
    for column, label in (("participant", "listener"), ("item", "item")):
        levels = pd.Categorical(frame[column])
        if len(levels.categories) < 2:
            notes.append(f"one {label} only: no {label} variance in the model")
            continue
        names.append(label)
        mats.append([np.eye(len(levels.categories))[levels.codes]])
    if not names:  # statsmodels fails on a model without random effects instead of saying so
        raise ValueError("one listener rated one item only: there is no variance to test the conditions against")
    vc = VCSpec(names, [[[f"{name}{j}" for j in range(m[0].shape[1])]] for name, m in zip(names, mats)], mats)
    model = MixedLM(
        frame["score"].to_numpy(float), exog, np.zeros(len(frame)), exog_re=np.zeros((len(frame), 0)), exog_vc=vc
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=True, method=["bfgs", "lbfgs", "cg", "powell"])  # in turn, until one converges
    if not result.converged:
        notes.append("the mixed model did not converge (BFGS, L-BFGS, CG and Powell tried): its tests are unreliable")
    if any("boundary" in str(w.message) for w in caught):
        notes.append("a variance component of the mixed model is estimated at or near zero")
    k = len(conditions)
    covariance = np.asarray(result.cov_params())[:k, :k]
    variances = {**dict(zip(names, map(float, result.vcomp))), "residual": float(result.scale)}
    return MixedModel(
        conditions,
        np.asarray(result.fe_params, dtype=float),
        covariance,
        np.bincount(codes, minlength=k),
        variances,
        bool(result.converged),
        confidence,
        notes,
    )
