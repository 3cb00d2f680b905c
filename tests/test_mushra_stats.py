"""MUSHRA analysis, validated on generated ratings whose structure is known.

Ratings = condition mean + assessor offset + item offset + noise, with planted bad assessors
where screening is tested. Simulations (coverage, type I error) are marked slow; the quick tests
check exact values against hand computations and, when installed, statsmodels.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from evalkit.mushra.anova import contrasts, gg_epsilon, rm_anova, rm_anova_cube
from evalkit.mushra.rating_plots import boxplot, mean_ci_plot
from evalkit.mushra.screening import screen
from evalkit.mushra.stats import (
    bootstrap_interval,
    condition_summary,
    hochberg,
    holm,
    paired_comparisons,
    permutation_test,
    t_interval,
)

MEANS = {"reference": 97, "anchor-lp35": 20, "anchor-lp70": 50, "codec-a": 80, "codec-b": 62, "codec-c": 35}


def generate(assessors=20, items=6, means=MEANS, assessor_sd=5.0, item_sd=4.0, noise_sd=8.0, seed=0, clip=True):
    rng = np.random.default_rng(seed)
    offsets, item_offsets = rng.normal(0, assessor_sd, assessors), rng.normal(0, item_sd, items)
    rows = []
    for p in range(assessors):
        for i in range(items):
            for condition, mean in means.items():
                score = mean + offsets[p] + item_offsets[i] + rng.normal(0, noise_sd)
                if condition == "reference":  # assessors find the hidden reference reliably
                    score = 100 - abs(rng.normal(0, 2))
                rows.append(
                    {
                        "participant": f"p{p:02d}",
                        "item": f"i{i}",
                        "condition": condition,
                        "score": float(np.clip(score, 0, 100)) if clip else score,
                    }
                )
    return pd.DataFrame(rows)


def set_scores(frame, participant, condition, items, score):
    mask = (frame["participant"] == participant) & (frame["condition"] == condition) & frame["item"].isin(items)
    frame.loc[mask, "score"] = score


# -- post-screening ----------------------------------------------------------------------


def test_screening_excludes_exactly_the_planted_assessors():
    frame = generate(assessors=12, items=20)
    set_scores(frame, "p01", "reference", [f"i{k}" for k in range(4)], 70)  # 4/20 = 20 %: out
    set_scores(frame, "p02", "reference", [f"i{k}" for k in range(3)], 70)  # 3/20 = 15 %: not more, stays
    set_scores(frame, "p03", "anchor-lp70", [f"i{k}" for k in range(4)], 95)  # mid anchor high on 20 %: out
    result = screen(frame)
    assert set(result.excluded) == {"p01", "p03"}
    assert "hidden reference below 90 on 20%" in result.excluded["p01"]
    assert "mid anchor above 90 on 20%" in result.excluded["p03"]
    assert result.anchor_items_skipped == ()
    assert len(result.apply(frame)) == len(frame) * 10 // 12


def test_items_where_many_rate_the_mid_anchor_high_leave_the_anchor_rule():
    frame = generate(assessors=10, items=6)
    for p in ["p00", "p01", "p02"]:  # 30 % of assessors on items i0 and i1: those items are skipped
        set_scores(frame, p, "anchor-lp70", ["i0", "i1"], 95)
    set_scores(frame, "p03", "anchor-lp70", ["i0", "i1", "i2"], 95)  # i2 still counts: 1/6 > 15 %
    result = screen(frame)
    assert result.anchor_items_skipped == ("i0", "i1")
    assert set(result.excluded) == {"p03"}
    assert result.table.set_index("participant").loc["p03", "anchor_above"] == pytest.approx(0.25)


# -- per-condition summaries -------------------------------------------------------------


def test_summary_matches_hand_computation():
    frame = pd.DataFrame(
        {
            "participant": ["a", "a", "b", "b"],
            "item": ["x", "y", "x", "y"],
            "condition": "c",
            "score": [60.0, 70.0, 80.0, 90.0],
        }
    )
    row = condition_summary(frame, n_boot=2000).iloc[0]
    half = sps.t.ppf(0.975, 3) * np.std([60, 70, 80, 90], ddof=1) / 2
    assert (row["n"], row["assessors"], row["mean"], row["median"]) == (4, 2, 75.0, 75.0)
    assert (row["q1"], row["q3"], row["iqr"]) == (67.5, 82.5, 15.0)
    assert (row["t_low"], row["t_high"]) == (pytest.approx(75 - half), pytest.approx(75 + half))
    assert (row["boot_low"], row["boot_high"]) == (65.0, 85.0)  # two assessors: means 65 or 75 or 85


def test_summary_recovers_known_means_and_is_seeded():
    frame = generate(assessors=40, items=8, clip=False)
    table = condition_summary(frame, n_boot=2000, seed=5).set_index("condition")
    for condition, mean in MEANS.items():
        if condition != "reference":  # offsets average out: within 3 standard errors of the truth
            assert abs(table.loc[condition, "mean"] - mean) < 4.5
            assert table.loc[condition, "boot_low"] < table.loc[condition, "mean"] < table.loc[condition, "boot_high"]
    again = condition_summary(frame, n_boot=2000, seed=5).set_index("condition")
    pd.testing.assert_frame_equal(table, again)


def test_intervals_on_degenerate_input():
    assert all(math.isnan(v) for v in t_interval(np.array([50.0])))
    assert all(math.isnan(v) for v in bootstrap_interval(np.array([50.0]), np.array([1.0])))


# -- Attachment 3 permutation test --------------------------------------------------------


def test_exact_paired_permutation_matches_enumeration_by_hand():
    # d = 1, 2, 3: of the 8 sign patterns only +++ and --- reach |mean| >= 2.
    result = permutation_test([11, 12, 13], [10, 10, 10], paired=True)
    assert result.exact and result.n_permutations == 8 and result.p_value == pytest.approx(2 / 8)
    assert result.statistic == pytest.approx(2.0)
    assert permutation_test([11, 12, 13], [10, 10, 10], paired=True, alternative="greater").p_value == 1 / 8


def test_pooled_permutation_test_separates_shifted_samples_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(60, 10, 30), rng.normal(50, 10, 30)
    shifted = permutation_test(a, b, n_permutations=5000, seed=1)
    assert shifted.p_value < 0.01 and not shifted.exact
    assert shifted == permutation_test(a, b, n_permutations=5000, seed=1)
    same = permutation_test(a, a, n_permutations=2000)
    assert same.p_value == 1.0
    median = permutation_test(a, b, statistic="median", n_permutations=2000)
    assert median.statistic == pytest.approx(np.median(a) - np.median(b))


def test_permutation_and_t_agree_on_normal_data():
    rng = np.random.default_rng(4)
    a = rng.normal(0, 1, 40)
    b = a + rng.normal(0.3, 1, 40)
    permuted = permutation_test(a, b, paired=True, n_permutations=20000, seed=2).p_value
    assert permuted == pytest.approx(sps.ttest_rel(a, b).pvalue, abs=0.01)


# -- multiple comparisons ---------------------------------------------------------------


def test_holm_and_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert hochberg(p) == pytest.approx([0.03, 0.04, 0.04, 0.02])


def test_corrections_match_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(3).uniform(0, 0.2, 15)
    assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])
    assert hochberg(p) == pytest.approx(multitest.multipletests(p, method="simes-hochberg")[1])


def test_paired_comparisons_find_the_known_ordering():
    frame = generate(assessors=15, items=6)
    table = paired_comparisons(frame, conditions=["codec-a", "codec-b", "codec-c"])
    assert table["significant"].all() and (table["mean_diff"] > 0).all()
    close = generate(assessors=15, items=6, means={**MEANS, "codec-b": 80.0})
    pair = paired_comparisons(close, conditions=["codec-a", "codec-b"], method="permutation", n_permutations=4000)
    assert not pair["significant"].iloc[0]


# -- repeated-measures ANOVA ----------------------------------------------------------------


def test_rm_anova_matches_statsmodels():
    anova = pytest.importorskip("statsmodels.stats.anova")
    frame = generate(assessors=8, items=3, clip=False)
    ours = rm_anova(frame)
    theirs = anova.AnovaRM(frame, "score", "participant", within=["condition", "item"]).fit().anova_table
    for effect in ["condition", "item", "condition:item"]:
        assert ours.loc[effect, "F"] == pytest.approx(theirs.loc[effect, "F Value"], rel=1e-9)
        assert ours.loc[effect, "df2"] == theirs.loc[effect, "Den DF"]
        assert ours.loc[effect, "p"] == pytest.approx(theirs.loc[effect, "Pr > F"], rel=1e-6, abs=1e-300)


def test_rm_anova_drops_incomplete_assessors():
    frame = generate(assessors=6, items=2)
    table = rm_anova(frame.drop(index=frame.index[(frame["participant"] == "p05")][:1]))
    assert table.attrs["dropped"] == ["p05"] and table.loc["condition", "df2"] == 5 * 4


def test_gg_epsilon_matches_the_classical_formula():
    rng = np.random.default_rng(6)
    data = rng.multivariate_normal(np.zeros(4), np.diag([1, 2, 4, 16]), size=30)
    s = np.cov(data, rowvar=False)
    k, mean, rows = 4, s.mean(), s.mean(axis=1)
    classic = (
        k**2 * (np.diag(s).mean() - mean) ** 2 / ((k - 1) * ((s**2).sum() - 2 * k * (rows**2).sum() + k**2 * mean**2))
    )
    assert gg_epsilon(data, contrasts(4)) == pytest.approx(classic)
    assert 1 / 3 <= gg_epsilon(data, contrasts(4)) <= 1


def test_gg_epsilon_converges_to_the_population_value():
    sigma = np.diag([1.0, 1.0, 1.0, 25.0])
    m = contrasts(4)
    t = m.T @ sigma @ m
    population = np.trace(t) ** 2 / (3 * np.trace(t @ t))
    data = np.random.default_rng(7).multivariate_normal(np.zeros(4), sigma, size=20000)
    assert gg_epsilon(data, m) == pytest.approx(population, abs=0.02)
    spherical = np.random.default_rng(8).multivariate_normal(np.zeros(4), np.eye(4) + 0.5, size=20000)
    assert gg_epsilon(spherical, m) == pytest.approx(1.0, abs=0.02)


def null_cubes(reps, subjects=10, items=3, seed=0):
    """Condition effects absent; subject x condition deviations with very unequal variances."""
    rng = np.random.default_rng(seed)
    sigma = np.diag([1.0, 1.0, 1.0, 1.0, 30.0])
    for _ in range(reps):
        b = rng.multivariate_normal(np.zeros(5), sigma, size=subjects)
        yield 50 + b[:, :, None] + rng.normal(0, 1, (subjects, 5, items))


@pytest.mark.slow
def test_greenhouse_geisser_restores_the_type_one_error_rate():
    p = np.array([rm_anova_cube(y).loc["condition", ["p", "p_gg"]].to_numpy(float) for y in null_cubes(2000)])
    plain, corrected = (p < 0.05).mean(axis=0)
    assert plain > 0.08  # uncorrected F is liberal without sphericity
    assert 0.03 < corrected < 0.07


def coverage(assessor_sd, reps=1000):
    """How often each 95 % interval holds the true mean 50, over generated tests of 12 assessors x 6 items."""
    hits = np.zeros(2)
    for seed in range(reps):
        frame = generate(
            assessors=12,
            items=6,
            means={"c": 50.0},
            assessor_sd=assessor_sd,
            item_sd=0.0,
            noise_sd=10.0,
            seed=seed,
            clip=False,
        )
        row = condition_summary(frame, n_boot=1000, seed=seed).iloc[0]
        hits += [row["t_low"] <= 50 <= row["t_high"], row["boot_low"] <= 50 <= row["boot_high"]]
    return hits / reps


@pytest.mark.slow
def test_interval_coverage_on_generated_tests():
    t_independent, boot_independent = coverage(assessor_sd=0.0)
    assert 0.92 <= t_independent <= 0.97 and 0.88 <= boot_independent <= 0.96
    # Strong listener offsets: the t interval over all ratings treats correlated ratings as
    # independent and under-covers; resampling assessors keeps close to the nominal level.
    t_listeners, boot_listeners = coverage(assessor_sd=8.0)
    assert t_listeners < 0.80 and boot_listeners >= 0.88


@pytest.mark.slow
def test_holm_keeps_the_family_wise_error_rate():
    errors = {"none": 0, "holm": 0}
    reps = 300
    for seed in range(reps):
        frame = generate(assessors=12, items=4, means={c: 50.0 for c in "abcde"}, seed=seed, clip=False)
        table = paired_comparisons(frame)
        errors["none"] += bool((table["p"] < 0.05).any())
        errors["holm"] += bool(table["significant"].any())
    assert errors["none"] / reps > 0.15 and errors["holm"] / reps <= 0.08


# -- plots ---------------------------------------------------------------------------------


def test_plots_return_figures_without_displaying():
    frame = generate(assessors=5, items=3)
    order = list(MEANS)
    for figure in (boxplot(frame, order, "Scores"), mean_ci_plot(condition_summary(frame, n_boot=200), "boot", order)):
        axes = figure.axes[0]
        assert [t.get_text() for t in axes.get_xticklabels()] == order and axes.get_ylim() == (0, 100)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue()[:4] == b"\x89PNG"
