"""Power analysis for MUSHRA and ACR tests: how many listeners a test needs to detect a given difference.

The model of a complete design (every listener rates every item in every condition):

    score = mean(condition) + listener + listener x condition + item x condition + noise

with listeners random (sd `listener`), a listener x condition interaction (sd `interaction`) and
noise (sd `noise`); the items are the test's, fixed. The difference between two conditions is
tested as the repeated-measures analysis of a complete design does for one contrast (equal to the
mixed model with listener and listener x condition random effects): a paired t-test over
listeners of each listener's mean difference, whose variance is 2 (interaction^2 + noise^2 / items).
Power is the noncentral t's; the listeners needed are the fewest that reach the wanted power.

An incomplete design (`Subset`: ACR with `trials_per_session`, each listener rating `per_session` of
the items x conditions pages, drawn as evalkit draws them) is tested the same way, within listeners:
the t-test runs over the listeners who rated both conditions at least once, on each one's mean
difference. A listener's page counts of the two conditions (m_a, m_b) are hypergeometric, so the
share of listeners who count and the variance of their difference,
2 interaction^2 + noise^2 E[1/m_a + 1/m_b | both rated], follow exactly; listener offsets cancel.

`pilot_spread` estimates the three sds from a pilot's ratings (two-way ANOVA mean squares),
`simulate_power` checks a prediction by simulating tests on the type's scale (MUSHRA 0-100,
clipped; ACR rounded to the categories 1-5), the way the tests in tests/ validate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError

__all__ = [
    "SCALES",
    "Spread",
    "Subset",
    "rated_both",
    "listeners_needed",
    "pilot_spread",
    "power",
    "run_difference",
    "scale_slope",
    "simulate_power",
]

SCALES = {"mushra": (0.0, 100.0, False), "acr": (1.0, 5.0, True)}  # low, high, rounded to whole categories
MAX_LISTENERS = 10_000
# Bounds that keep a mistyped number from running for hours or filling memory: the exact incomplete-design
# power sums over every way a session can split its pages (cubic in the items), a simulation holds every
# rating of one simulated test at once.
MAX_SUBSET_ITEMS = 2_000
MAX_SIMULATIONS = 100_000
MAX_SIMULATED_RATINGS = 10_000_000


@dataclass(frozen=True)
class Spread:
    """The sds of the model, on the test's scale, and where they came from."""

    noise: float
    interaction: float
    listener: float = 0.0
    source: str = ""

    def difference_sd(self, items: int) -> float:
        """The sd of one listener's mean difference between two conditions over `items` items."""
        return float(np.sqrt(2 * (self.interaction**2 + self.noise**2 / items)))


@dataclass(frozen=True)
class Subset:
    """An incomplete design: each listener rates `per_session` of the test's items x `conditions` pages."""

    per_session: int
    conditions: int = 2

    def check(self, items: int) -> None:
        if self.conditions < 2 or self.per_session < 2 or items < 1:
            raise ConfigError(
                "an incomplete design needs 2 or more conditions and 2 or more pages per session, "
                f"got {self.conditions} conditions and {self.per_session} pages"
            )
        if items > MAX_SUBSET_ITEMS and self.per_session < items * self.conditions:
            raise ConfigError(
                f"an incomplete design's power is computed for up to {MAX_SUBSET_ITEMS} items, got {items}"
            )


def rated_both(items: int, subset: Subset | None) -> tuple[float, float]:
    """(the share of listeners who rate both compared conditions, E[1/m_a + 1/m_b] over those listeners), where
    m_a and m_b are a listener's pages of each condition among `subset.per_session` of items x conditions pages
    (multivariate hypergeometric). A complete design: (1, 2 / items)."""
    pages = items * (subset.conditions if subset else 2)
    if subset is None or subset.per_session >= pages:
        return 1.0, 2.0 / items
    subset.check(items)
    draws, others = subset.per_session, pages - 2 * items
    total = comb(pages, draws)
    share = inverse = 0.0
    for a in range(1, min(items, draws) + 1):
        for b in range(1, min(items, draws - a) + 1):
            if draws - a - b > others:
                continue
            chance = comb(items, a) * comb(items, b) * comb(others, draws - a - b) / total
            share += chance
            inverse += chance * (1 / a + 1 / b)
    return share, (inverse / share if share else float("inf"))


def pilot_spread(frame: pd.DataFrame, conditions: list[str] | None = None) -> Spread:
    """The model's sds from a pilot's ratings (participant, item, condition, score) of `conditions` (default: all),
    by the mean squares of each condition's listener x item table and of the listener x condition table."""
    if conditions:
        frame = frame[frame["condition"].isin(conditions)]
    cells = frame.groupby(["participant", "item", "condition"])["score"].mean().unstack(["item", "condition"])
    listeners, (items, kinds) = (
        len(cells),
        (cells.columns.get_level_values(0).nunique(), cells.columns.get_level_values(1).nunique()),
    )
    if listeners < 3 or items < 2 or kinds < 2:
        raise ConfigError(
            f"a pilot needs at least 3 listeners, 2 items and 2 conditions; it has {listeners}, {items} and {kinds}"
        )
    if cells.isna().any().any():
        raise ConfigError(
            "the pilot is incomplete: every listener must rate every item in every condition used "
            f"({int(cells.isna().sum().sum())} cells missing); choose conditions with --condition"
        )
    cube = cells.to_numpy(float).reshape(listeners, items, kinds) if _ordered(cells) else _cube(cells)
    # noise: each condition's listener x item residual, pooled
    residual = (
        cube
        - cube.mean(axis=1, keepdims=True)
        - cube.mean(axis=0, keepdims=True)
        + cube.mean(axis=(0, 1), keepdims=True)
    )
    noise_var = float((residual**2).sum() / (kinds * (listeners - 1) * (items - 1)))
    means = cube.mean(axis=1)  # listener x condition
    inter = means - means.mean(axis=0) - means.mean(axis=1, keepdims=True) + means.mean()
    interaction_var = max(0.0, float((inter**2).sum() / ((listeners - 1) * (kinds - 1))) - noise_var / items)
    listener_means = means.mean(axis=1)
    listener_var = max(
        0.0, float(np.var(listener_means, ddof=1)) - interaction_var / kinds - noise_var / (items * kinds)
    )
    return Spread(
        float(np.sqrt(noise_var)),
        float(np.sqrt(interaction_var)),
        float(np.sqrt(listener_var)),
        f"pilot of {listeners} listeners x {items} items x {kinds} conditions",
    )


def _ordered(cells: pd.DataFrame) -> bool:
    """Whether the columns run item-major with every condition under each item (unstack's usual order)."""
    codes = pd.MultiIndex.from_product(
        [sorted(set(cells.columns.get_level_values(0))), sorted(set(cells.columns.get_level_values(1)))]
    )
    return list(cells.columns) == list(codes)


def _cube(cells: pd.DataFrame) -> np.ndarray:
    items = sorted(set(cells.columns.get_level_values(0)))
    kinds = sorted(set(cells.columns.get_level_values(1)))
    return np.stack([np.stack([cells[(i, c)].to_numpy(float) for c in kinds], axis=1) for i in items], axis=1)


def power(
    effect: float, spread: Spread, listeners: int, items: int, alpha: float = 0.05, subset: Subset | None = None
) -> float:
    """The chance that a two-sided paired t-test at `alpha` finds a true difference `effect` with `listeners`
    (with `subset`: over the listeners expected to rate both conditions)."""
    share, inverse = rated_both(items, subset)
    usable = listeners * share
    if usable < 2:
        return 0.0
    sd = float(np.sqrt(2 * spread.interaction**2 + spread.noise**2 * inverse))
    if sd == 0:  # listeners who never vary find any difference
        return 1.0
    df = usable - 1
    ncp = abs(effect) * np.sqrt(usable) / sd
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp))


def listeners_needed(
    effect: float,
    spread: Spread,
    items: int,
    target: float = 0.8,
    alpha: float = 0.05,
    subset: Subset | None = None,
) -> int:
    """The fewest listeners whose power reaches `target`; ConfigError for a difference no panel can find."""
    if not np.isfinite(effect) or effect == 0 or not 0 < target < 1 or not 0 < alpha < 1:
        raise ConfigError(
            "power analysis needs a finite non-zero effect, a power between 0 and 1 and an alpha between 0 and 1"
        )
    if not all(np.isfinite(sd) and sd >= 0 for sd in (spread.noise, spread.interaction, spread.listener)):
        raise ConfigError(f"the spread's sds must be finite and not negative, got {spread}")
    if rated_both(items, subset)[0] == 0:
        raise ConfigError(f"with {subset.per_session} pages per session no listener rates both conditions")
    if spread.difference_sd(items) == 0 and subset is None:
        return 2
    low, high = 2, 2
    while (
        power(effect, spread, high, items, alpha, subset) < target
    ):  # doubling, then bisection: power grows with listeners
        low, high = high, high * 2
        if high > MAX_LISTENERS:
            raise ConfigError(f"more than {MAX_LISTENERS} listeners would be needed to find a difference of {effect:g}")
    while low < high:
        middle = (low + high) // 2
        if power(effect, spread, middle, items, alpha, subset) >= target:
            high = middle
        else:
            low = middle + 1
    return high


def run_difference(results: pd.DataFrame, metric: str, better: str, worse: str) -> tuple[float, int]:
    """The mean difference of `metric` between two codecs of a run over the items both scored, and those items."""
    from ..report.leaderboard import current_results

    ok = current_results(results)
    ok = ok[(ok["status"] == "ok") & (ok["metric"] == metric)]
    if ok.empty:
        raise ConfigError(f"the run has no scored metric {metric!r}")
    table = ok.pivot_table(index="item_id", columns="codec", values="value", aggfunc="mean")
    for codec in (better, worse):
        if codec not in table:
            raise ConfigError(f"the run has no {metric} values of codec {codec!r} (it has: {', '.join(table.columns)})")
    if better == worse:
        raise ConfigError(f"--codecs names {better!r} twice; give the two codecs whose difference to detect")
    pairs = table[[better, worse]].dropna()
    if pairs.empty:
        raise ConfigError(f"codecs {better!r} and {worse!r} share no item scored with {metric}")
    return float((pairs[better] - pairs[worse]).mean()), len(pairs)


def scale_slope(points: pd.DataFrame) -> float:
    """Listener score per metric unit: the least-squares slope over condition points (columns value, score)."""
    if len(points) < 2 or np.ptp(points["value"].to_numpy(float)) == 0:
        raise ConfigError(
            "a slope from the metric to the listening scale needs two conditions with different "
            "metric values; give --slope"
        )
    return float(np.polyfit(points["value"].to_numpy(float), points["score"].to_numpy(float), 1)[0])


def simulate_power(
    effect: float,
    spread: Spread,
    listeners: int,
    items: int,
    kind: str = "mushra",
    level: float | None = None,
    alpha: float = 0.05,
    simulations: int = 1000,
    seed: int = 0,
    subset: Subset | None = None,
) -> float:
    """The share of simulated tests on `kind`'s scale (clipped, ACR rounded) whose paired t-test finds `effect`;
    the better condition sits at `level` (default: the scale's three quarters). With `subset`, each listener
    rates the pages evalkit's session sampling gives them, and the test runs over those who rated both."""
    if not 1 <= simulations <= MAX_SIMULATIONS:
        raise ConfigError(f"the number of simulated tests must be 1 to {MAX_SIMULATIONS}, got {simulations}")
    ratings = listeners * items * (subset.conditions if subset else 2)
    if ratings > MAX_SIMULATED_RATINGS:
        raise ConfigError(
            f"a simulated test would hold {ratings} ratings ({listeners} listeners x {items} items); "
            f"at most {MAX_SIMULATED_RATINGS}: simulate fewer items"
        )
    low, high, rounded = SCALES[kind]
    top = level if level is not None else low + 0.75 * (high - low)
    if subset is not None and subset.per_session < items * subset.conditions:
        subset.check(items)
        return _simulate_subset(
            effect, spread, listeners, items, (low, high, rounded), top, alpha, simulations, seed, subset
        )
    means = np.array([top, top - effect])
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(simulations):
        scores = (
            means[None, None, :]
            + rng.normal(0, spread.listener, (listeners, 1, 1))
            + rng.normal(0, spread.interaction, (listeners, 1, 2))
            + rng.normal(0, spread.noise, (listeners, items, 2))
        )
        scores = np.clip(np.round(scores) if rounded else scores, low, high)
        differences = scores[:, :, 0].mean(axis=1) - scores[:, :, 1].mean(axis=1)
        if np.ptp(differences) > 0 and stats.ttest_1samp(differences, 0.0).pvalue < alpha:
            found += 1
    return found / simulations


def _simulate_subset(effect, spread, listeners, items, scale, top, alpha, simulations, seed, subset) -> float:
    """simulate_power for an incomplete design: pages per listener by evalkit's own session sampling."""
    from .types.base import sample_trials

    low, high, rounded = scale
    conditions = subset.conditions
    pages = np.arange(items * conditions)  # page p: item p // conditions in condition p % conditions
    means = np.full(conditions, top - effect / 2)
    means[:2] = top, top - effect  # the two compared; the others only fill the sessions
    rng = np.random.default_rng(seed)
    found = 0
    for simulation in range(simulations):
        test_seed = seed * 1_000_003 + simulation
        rated = np.array([sample_trials(list(pages), test_seed, j, subset.per_session) for j in range(listeners)])
        kinds = rated % conditions
        scores = (
            means[kinds]
            + rng.normal(0, spread.listener, (listeners, 1))
            + np.take_along_axis(rng.normal(0, spread.interaction, (listeners, conditions)), kinds, axis=1)
            + rng.normal(0, spread.noise, kinds.shape)
        )
        scores = np.clip(np.round(scores) if rounded else scores, low, high)
        differences = [
            row[kind == 0].mean() - row[kind == 1].mean()
            for row, kind in zip(scores, kinds)
            if (kind == 0).any() and (kind == 1).any()
        ]
        if len(differences) > 1 and np.ptp(differences) > 0 and stats.ttest_1samp(differences, 0.0).pvalue < alpha:
            found += 1
    return found / simulations
