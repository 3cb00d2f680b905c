"""MUSHRA statistics for real designs: design detection, the linear mixed model against statsmodels and by
simulation (incomplete designs with known effects), the omnibus choice, and configurable screening."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.errors import ConfigError
from evalkit.mushra.design import detect_design
from evalkit.mushra.mixed import fit_mixed
from evalkit.mushra.omnibus import omnibus
from evalkit.mushra.screening import ScreeningConfig, screen
from evalkit.mushra.stats import condition_summary, listener_means

MEANS = {"ref": 96.0, "lp35": 20.0, "lp70": 45.0, "codec-a": 78.0, "codec-b": 62.0, "codec-c": 62.0}


def simulate(
    listeners=16, items=12, per_listener=6, means=MEANS, listener_sd=6.0, item_sd=4.0, noise_sd=9.0, seed=0, drop=0.0
):
    """Each listener rates `per_listener` of `items` items (balanced: item sets rotate), every condition on each;
    `drop` removes that share of single ratings (an unbalanced design)."""
    rng = np.random.default_rng(seed)
    offsets, item_offsets = rng.normal(0, listener_sd, listeners), rng.normal(0, item_sd, items)
    rows = []
    for p in range(listeners):
        for i in [(p * per_listener + k) % items for k in range(per_listener)]:
            for condition, mean in means.items():
                if rng.random() >= drop:
                    rows.append(
                        {
                            "participant": f"p{p:02d}",
                            "item": f"i{i:02d}",
                            "condition": condition,
                            "score": mean + offsets[p] + item_offsets[i] + rng.normal(0, noise_sd),
                        }
                    )
    return pd.DataFrame(rows)


# -- design ----------------------------------------------------------------------------------------


def test_designs_are_told_apart():
    assert detect_design(simulate(items=6, per_listener=6)).kind == "complete"
    balanced = detect_design(simulate(listeners=16, items=16, per_listener=8))
    assert balanced.kind == "balanced incomplete" and balanced.items_per_listener == (8, 8)
    assert "rated 8 of 16 items each" in balanced.describe()
    uneven = simulate(listeners=10, items=12, per_listener=6)
    uneven = uneven[~((uneven["participant"] == "p00") & (uneven["item"] == "i00"))]
    assert detect_design(uneven).kind == "incomplete"
    holes = detect_design(simulate(drop=0.05, seed=3))
    assert holes.kind == "unbalanced" and holes.missing_cells > 0


# -- the linear mixed model --------------------------------------------------------------------


def test_mixed_model_equals_statsmodels_formula_fit():
    import statsmodels.formula.api as smf

    frame = simulate(listeners=20, items=16, per_listener=8, seed=1)
    ours = fit_mixed(frame)
    data = frame.assign(group=1)
    reference = smf.mixedlm(
        "score ~ 0 + C(condition)",
        data,
        groups="group",
        re_formula="0",
        vc_formula={"listener": "0 + C(participant)", "item": "0 + C(item)"},
    ).fit(reml=True)
    expected = {name.split("[")[1].rstrip("]"): value for name, value in reference.fe_params.items()}
    assert dict(zip(ours.conditions, ours.coefficients)) == pytest.approx(expected, abs=1e-4)
    assert ours.variances["residual"] == pytest.approx(reference.scale, rel=1e-4)
    assert sorted(ours.variances[k] for k in ("listener", "item")) == pytest.approx(sorted(reference.vcomp), rel=1e-3)
    # Contrasts are differences of coefficients with the model's covariance.
    row = ours.contrasts().set_index(["a", "b"]).loc[("codec-a", "codec-b")]
    assert row["estimate"] == pytest.approx(expected["codec-a"] - expected["codec-b"], abs=1e-4)
    assert row["p_adjusted"] >= row["p"]


def test_mixed_model_recovers_known_effects_on_an_incomplete_design():
    model = fit_mixed(simulate(listeners=24, items=16, per_listener=8, seed=2))
    means = model.means().set_index("condition")
    for condition, truth in MEANS.items():
        assert abs(means.loc[condition, "estimate"] - truth) < 4 * means.loc[condition, "se"]
    table = model.contrasts().set_index(["a", "b"])
    assert not table.loc[("codec-b", "codec-c"), "significant"]  # equal in truth
    assert table.loc[("codec-a", "codec-b"), "significant"]
    assert model.omnibus()["p"] < 1e-10 and model.converged


@pytest.mark.slow
def test_mixed_model_intervals_cover_the_truth_95_percent_of_the_time():
    """200 simulated balanced-incomplete tests (12 listeners each rating 6 of 12 items)."""
    pairs, covered, means_covered, false_claims = 0, 0, 0, 0
    truth = pd.Series(MEANS)
    for seed in range(200):
        model = fit_mixed(simulate(listeners=12, items=12, per_listener=6, seed=100 + seed))
        contrasts = model.contrasts()
        expected = truth[contrasts["a"]].to_numpy() - truth[contrasts["b"]].to_numpy()
        covered += int(((contrasts["ci_low"] <= expected) & (expected <= contrasts["ci_high"])).sum())
        pairs += len(contrasts)
        means = model.means().set_index("condition")
        expected_means = truth[means.index]
        means_covered += int(((means["ci_low"] <= expected_means) & (expected_means <= means["ci_high"])).sum())
        tie = contrasts[(contrasts["a"] == "codec-b") & (contrasts["b"] == "codec-c")]
        false_claims += int(tie["p"].iloc[0] < 0.05)
    assert 0.935 <= covered / pairs <= 0.965
    assert 0.92 <= means_covered / (200 * len(MEANS)) <= 0.965
    assert 0.015 <= false_claims / 200 <= 0.09


def test_complete_designs_get_both_tests_and_incomplete_ones_the_mixed_model():
    complete = omnibus(simulate(items=6, per_listener=6, seed=4))
    assert complete.primary == "rm-anova" and complete.anova is not None and complete.model is not None
    assert list(complete.table()["test"].str.split().str[0]) == ["repeated-measures", "linear"]
    incomplete = omnibus(simulate(listeners=16, items=16, per_listener=8, seed=4))
    assert incomplete.primary == "mixed model" and incomplete.anova is None
    assert incomplete.table()["test"].iloc[0].startswith("linear mixed model")
    assert "mixed model is the omnibus test" in incomplete.notes[0]
    assert len(incomplete.contrasts) == 15 and incomplete.contrasts["p_adjusted"].between(0, 1).all()


def test_a_single_condition_has_no_omnibus_test():
    frame = simulate(means={"only": 50.0})
    result = omnibus(frame)
    assert result.model is None and "at least 2 conditions" in result.notes[-1]


# -- the listener mean ------------------------------------------------------------------------------


def test_one_listener_mean_on_incomplete_data():
    frame = simulate(listeners=9, items=12, per_listener=5, seed=6)  # items rated by 3 or 4 listeners
    summary = condition_summary(frame, n_boot=200).set_index("condition")["mean"]
    means = listener_means(frame).set_index("condition")["score"]
    assert summary.to_dict() == pytest.approx(frame.groupby("condition")["score"].mean().to_dict(), abs=1e-12)
    assert means.to_dict() == pytest.approx(summary.to_dict(), abs=1e-12)
    item_first = frame.groupby(["condition", "item"])["score"].mean().groupby("condition").mean()
    assert (item_first - summary).abs().max() > 0.01  # the other definition really differs here


# -- screening you configure -----------------------------------------------------------------------


def _planted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[
        (frame["participant"] == "p01") & (frame["condition"] == "ref") & frame["item"].isin(["i00", "i01"]), "score"
    ] = 60.0
    frame.loc[
        (frame["participant"] == "p02") & (frame["condition"] == "lp70") & frame["item"].isin(["i00", "i01"]), "score"
    ] = 95.0
    return frame


def test_declared_names_screen_what_the_defaults_would_silently_keep():
    frame = simulate(items=6, per_listener=6, seed=7).assign(score=lambda f: f["score"].clip(0, 100))
    frame.loc[frame["condition"] == "ref", "score"] = frame.loc[frame["condition"] == "ref", "score"].clip(lower=92)
    frame = _planted(frame)
    with pytest.raises(ConfigError, match="hidden reference 'reference' is not a condition"):
        screen(frame)  # evalkit's default names do not exist here: an error, not "keep everyone"
    both = screen(frame, config=ScreeningConfig("bs1534-3", "ref", ("lp35", "lp70"), "lp70"))
    assert set(both.excluded) == {"p01", "p02"}
    reference_only = screen(frame, config=ScreeningConfig("reference", "ref", (), None))
    assert set(reference_only.excluded) == {"p01"} and "hidden-reference rule only" in reference_only.describe()
    none = screen(frame, config=ScreeningConfig("none", None))
    assert none.excluded == {} and len(none.kept) == frame["participant"].nunique()


def test_screening_names_and_rules_are_checked():
    frame = simulate(items=6, per_listener=6)
    with pytest.raises(ConfigError, match="mid anchor 'anchor-x' is not a condition"):
        screen(frame, config=ScreeningConfig("bs1534-3", "ref", ("anchor-x",), "anchor-x"))
    with pytest.raises(ConfigError, match="needs the mid anchor"):
        ScreeningConfig("bs1534-3", "ref", (), None)
    with pytest.raises(ConfigError, match="not one of"):
        ScreeningConfig("strict", "ref")
    config = ScreeningConfig("reference", "ref", ("lp70",), None)
    assert ScreeningConfig.from_dict(config.as_dict()) == config


def test_the_anchor_item_rule_counts_only_listeners_who_rated_the_item():
    frame = simulate(listeners=12, items=12, per_listener=6, seed=8)  # every item rated by 6 listeners
    raters = sorted(frame.loc[frame["item"] == "i00", "participant"].unique())
    for p in raters[:2]:  # 2 of its 6 raters (33 %) rate the mid anchor above 90: the item leaves the rule
        frame.loc[(frame["participant"] == p) & (frame["item"] == "i00") & (frame["condition"] == "lp70"), "score"] = 95
    result = screen(frame, config=ScreeningConfig("bs1534-3", "ref", ("lp70",), "lp70"))
    assert result.anchor_items_skipped == ("i00",)
