"""Two-way repeated-measures ANOVA (condition x item, both within assessors) with the
Greenhouse-Geisser correction for non-sphericity.

Each effect is tested against its interaction with the assessor. Sphericity rarely holds for
MUSHRA data (the reference and anchors vary far less than mid-quality codecs), so every effect's
degrees of freedom are also reported multiplied by the Greenhouse-Geisser epsilon, estimated from
the covariance of orthonormal contrasts of the assessors' cell means.
Needs complete data: assessors who miss any (condition, item) cell are dropped and listed in
``result.attrs["dropped"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["rm_anova", "rm_anova_cube", "gg_epsilon", "contrasts", "cube"]


def contrasts(k: int) -> np.ndarray:
    """A k x (k-1) matrix of orthonormal contrasts (columns orthogonal to the constant)."""
    basis, _ = np.linalg.qr(np.column_stack([np.ones(k), np.eye(k)[:, : k - 1]]))
    return basis[:, 1:]


def gg_epsilon(cell_means: np.ndarray, contrast: np.ndarray) -> float:
    """Greenhouse-Geisser epsilon from subjects x cells means and the effect's contrasts."""
    if contrast.shape[1] == 1:
        return 1.0
    sigma = np.cov(cell_means @ contrast, rowvar=False)
    return float(np.trace(sigma) ** 2 / (contrast.shape[1] * np.trace(sigma @ sigma)))


def cube(frame: pd.DataFrame) -> tuple[np.ndarray, list, list, list, list]:
    """Scores as an assessors x conditions x items array; incomplete assessors are dropped."""
    table = frame.pivot_table(index="participant", columns=["condition", "item"], values="score", aggfunc="mean")
    conditions, items = sorted(frame["condition"].unique()), sorted(frame["item"].unique())
    table = table.reindex(columns=pd.MultiIndex.from_product([conditions, items]))
    complete = table.notna().all(axis=1)
    dropped = list(table.index[~complete])
    table = table[complete]
    return (
        table.to_numpy().reshape(len(table), len(conditions), len(items)),
        list(table.index),
        conditions,
        items,
        dropped,
    )


def rm_anova(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows condition, item, condition:item; columns SS, df1, df2, MS, F, p, eps_gg, p_gg, eta_p2."""
    y, subjects, conditions, items, dropped = cube(frame)
    if y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(
            f"a repeated-measures ANOVA needs at least 2 complete assessors and 2 conditions "
            f"(have {y.shape[0]} and {y.shape[1]}; dropped as incomplete: {dropped})"
        )
    table = rm_anova_cube(y)
    table.attrs.update(dropped=dropped, assessors=subjects, conditions=conditions, items=items)
    return table


def rm_anova_cube(y: np.ndarray) -> pd.DataFrame:
    """The same on an assessors x conditions x items array (fast enough for simulations)."""
    s, c, i = y.shape
    m = y.mean()
    ms, mc, mi = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    msc, msi, mci = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    residual = y - msc[:, :, None] - msi[:, None, :] - mci[None] + ms[:, None, None] + mc[None, :, None] + mi - m
    effects = {
        "condition": (
            s * i * np.sum((mc - m) ** 2),
            i * np.sum((msc - ms[:, None] - mc + m) ** 2),
            c - 1,
            msc,
            contrasts(c),
        ),
        "item": (
            s * c * np.sum((mi - m) ** 2),
            c * np.sum((msi - ms[:, None] - mi + m) ** 2),
            i - 1,
            msi,
            contrasts(i) if i > 1 else np.zeros((1, 0)),
        ),
        "condition:item": (
            s * np.sum((mci - mc[:, None] - mi + m) ** 2),
            np.sum(residual**2),
            (c - 1) * (i - 1),
            y.reshape(s, c * i),
            np.kron(contrasts(c), contrasts(i)) if i > 1 else np.zeros((c, 0)),
        ),
    }
    rows = [_row(name, *values, s) for name, values in effects.items() if values[2] > 0]
    return pd.DataFrame(rows).set_index("effect")


def _row(name: str, ss: float, ss_error: float, df1: int, cell_means: np.ndarray, contrast: np.ndarray, s: int) -> dict:
    df2 = df1 * (s - 1)
    f = (ss / df1) / (ss_error / df2) if ss_error > 0 else np.inf
    eps = gg_epsilon(cell_means, contrast)
    return {
        "effect": name,
        "SS": ss,
        "df1": df1,
        "df2": df2,
        "MS": ss / df1,
        "F": f,
        "p": float(stats.f.sf(f, df1, df2)),
        "eps_gg": eps,
        "p_gg": float(stats.f.sf(f, eps * df1, eps * df2)),
        "eta_p2": ss / (ss + ss_error),
    }
