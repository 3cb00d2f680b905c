"""Test design aids: item selection from scored results, power analysis (validated by simulation), and the
`evalkit listening` commands for rejections and repeat panel workers."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestPower
from test_listening_crowd import CROWD, arrive, crowd_test
from test_listening_types import sources  # noqa: F401 (a fixture)

from evalkit import listening
from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.listening.items import select_items
from evalkit.listening.power import (
    Spread,
    Subset,
    listeners_needed,
    pilot_spread,
    power,
    rated_both,
    simulate_power,
)
from evalkit.store import connect

# -- item selection ---------------------------------------------------------------------------


def results(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """A results frame as the store gives it, from {(item, codec, metric): value}."""
    return pd.DataFrame(
        [
            {
                "item_id": i,
                "codec": c,
                "metric": m,
                "value": v,
                "status": "ok",
                "codec_hash": c,
                "metric_version": "1",
                "created_at": pd.Timestamp("2026-01-01"),
            }
            for (i, c, m), v in values.items()
        ]
    )


def test_disagreement_picks_the_items_whose_metrics_order_the_codecs_differently():
    codecs = ["a", "b", "c"]
    values = {}
    for item, reversed_ in (("agree1", False), ("agree2", False), ("flip", True), ("agree3", False)):
        for k, codec in enumerate(codecs):
            values[(item, codec, "estoi")] = 0.5 + 0.1 * k
            # mcd is lower-is-better: agreeing means mcd falls as estoi rises
            values[(item, codec, "mcd")] = (2.0 + k) if reversed_ else (5.0 - k)
    values[("partial", "a", "estoi")] = 0.9  # an item without every codec and metric is left out
    chosen = select_items(results(values), 2, "disagreement")
    assert chosen["item"].tolist()[0] == "flip" and chosen["score"].iloc[0] == pytest.approx(1.0)
    assert chosen["score"].iloc[1] == pytest.approx(0.0) and "partial" not in set(chosen["item"])
    assert chosen["chosen"].tolist() == [1, 2] and (chosen["codecs"] == 3).all()


def test_spread_and_coverage_rank_items_by_condition_spread_and_by_quality():
    rng = np.random.default_rng(1)
    gaps = {"wide": 0.4, "mid": 0.2, "narrow": 0.02}
    levels = {"wide": 0.2, "mid": 0.5, "narrow": 0.9}  # mean quality over codecs: 0.6, 0.7, 0.92
    values = {
        (item, codec, metric): levels[item] + gap * k + 0.001 * rng.standard_normal()
        for item, gap in gaps.items()
        for k, codec in enumerate("abc")
        for metric in ("estoi", "f0_corr")
    }
    assert select_items(results(values), 2, "spread")["item"].tolist() == ["wide", "mid"]
    covered = select_items(results(values), 2, "coverage")
    assert covered["item"].tolist() == ["wide", "narrow"]  # the lowest and the highest quality
    with pytest.raises(ConfigError, match="disagreement rule compares metrics"):
        select_items(results(values), 2, "disagreement", metrics=["estoi"])
    with pytest.raises(ConfigError, match="no scored codec 'zzz'"):
        select_items(results(values), 2, "spread", codecs=["a", "zzz"])
    with pytest.raises(ConfigError, match="at least two codecs"):
        select_items(results(values), 2, "spread", codecs=["a"])


# -- power analysis ---------------------------------------------------------------------------


def test_power_equals_statsmodels_one_sample_t_power_and_the_count_is_the_smallest():
    spread = Spread(noise=12.0, interaction=5.0)
    for listeners in (5, 12, 30):
        expected = TTestPower().power(6.0 / spread.difference_sd(6), listeners, 0.05, alternative="two-sided")
        assert power(6.0, spread, listeners, 6) == pytest.approx(expected, rel=1e-6)
    needed = listeners_needed(6.0, spread, 6, 0.8)
    assert power(6.0, spread, needed, 6) >= 0.8 > power(6.0, spread, needed - 1, 6)
    assert listeners_needed(-6.0, spread, 6) == needed  # the sign of the difference does not matter
    with pytest.raises(ConfigError, match="non-zero effect"):
        listeners_needed(0.0, spread, 6)
    with pytest.raises(ConfigError, match="more than"):
        listeners_needed(0.001, spread, 6)


def simulated_pilot(spread: Spread, means, listeners: int, items: int, kind: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    means = np.asarray(means, float)
    cube = (
        means[None, None, :]
        + rng.normal(0, spread.listener, (listeners, 1, 1))
        + rng.normal(0, spread.interaction, (listeners, 1, len(means)))
        + rng.normal(0, spread.noise, (listeners, items, len(means)))
    )
    cube = np.clip(np.round(cube), 1, 5) if kind == "acr" else np.clip(cube, 0, 100)
    return pd.DataFrame(
        [
            {"participant": f"p{p}", "item": f"i{i}", "condition": f"c{k}", "score": cube[p, i, k]}
            for p in range(listeners)
            for i in range(items)
            for k in range(len(means))
        ]
    )


@pytest.mark.parametrize(
    ("kind", "truth", "means", "effect", "items"),
    [
        ("mushra", Spread(12.0, 5.0, 8.0), [70, 60, 50], 6.0, 6),
        ("acr", Spread(0.7, 0.25, 0.3), [4.0, 3.5, 3.0], 0.3, 8),
    ],
)
def test_the_predicted_listener_count_reaches_the_nominal_power_in_simulation(kind, truth, means, effect, items):
    """The count predicted from the model's sds, simulated on the type's scale (clipped; ACR rounded to categories),
    finds the difference about 80 % of the time; half the panel clearly does not. A simulated pilot of 60
    listeners recovers the sds and a count close to the true one."""
    needed = listeners_needed(effect, truth, items, 0.8)
    assert 10 <= needed <= 60
    simulated = simulate_power(effect, truth, needed, items, kind, means[0], simulations=800, seed=5)
    assert simulated == pytest.approx(power(effect, truth, needed, items), abs=0.04)
    assert simulated >= 0.8 - 0.04
    assert simulate_power(effect, truth, needed // 2, items, kind, means[0], simulations=300, seed=6) < 0.65
    estimated = pilot_spread(simulated_pilot(truth, means, 60, items, kind, seed=0))
    assert estimated.noise == pytest.approx(truth.noise, rel=0.1)
    assert estimated.interaction == pytest.approx(truth.interaction, rel=0.3)
    assert listeners_needed(effect, estimated, items, 0.8) == pytest.approx(needed, rel=0.2)


def test_rated_both_is_the_multivariate_hypergeometric_and_a_full_session_is_the_complete_design():
    from scipy.stats import multivariate_hypergeom

    for items, subset in ((8, Subset(12, 4)), (5, Subset(3, 3)), (6, Subset(7, 2))):
        share = inverse = 0.0
        for a in range(items + 1):
            for b in range(items + 1):
                rest = subset.per_session - a - b
                if a and b and 0 <= rest <= items * (subset.conditions - 2):
                    chance = multivariate_hypergeom.pmf(
                        [a, b, rest], [items, items, items * (subset.conditions - 2)], subset.per_session
                    )
                    share, inverse = share + chance, inverse + chance * (1 / a + 1 / b)
        assert rated_both(items, subset) == (pytest.approx(share), pytest.approx(inverse / share))
    spread = Spread(0.7, 0.25, 0.3)
    complete = listeners_needed(0.4, spread, 8)
    assert listeners_needed(0.4, spread, 8, subset=Subset(32, 4)) == complete  # every page: the complete design
    assert power(0.4, spread, 20, 8, subset=Subset(40, 4)) == power(0.4, spread, 20, 8)
    fewer = [listeners_needed(0.4, spread, 8, subset=Subset(k, 4)) for k in (24, 12, 8, 4)]
    assert complete < fewer[0] < fewer[1] < fewer[2] < fewer[3]  # fewer pages each: more listeners
    with pytest.raises(ConfigError, match="2 or more pages per session"):
        listeners_needed(0.4, spread, 8, subset=Subset(1, 4))


@pytest.mark.parametrize(
    ("kind", "truth", "rounding", "subset", "items", "effect", "level"),
    [
        ("mushra", Spread(12.0, 5.0, 8.0), 0.0, Subset(9, 3), 6, 6.0, 60.0),
        ("acr", Spread(0.7, 0.25, 0.3), 1 / 12, Subset(12, 4), 8, 0.4, 4.0),
    ],
)
def test_the_predicted_count_for_listeners_rating_a_subset_reaches_the_nominal_power_in_simulation(
    kind, truth, rounding, subset, items, effect, level
):
    """Each simulated listener rates the pages evalkit's session sampling gives them (trials_per_session). ACR's
    rounding to categories adds its variance (1/12) to the noise, as it is in any real pilot's spread."""
    seen = Spread(float(np.sqrt(truth.noise**2 + rounding)), truth.interaction, truth.listener)
    needed = listeners_needed(effect, seen, items, 0.8, subset=subset)
    assert listeners_needed(effect, seen, items, 0.8) < needed <= 80
    simulated = simulate_power(effect, truth, needed, items, kind, level, simulations=800, seed=5, subset=subset)
    assert simulated == pytest.approx(power(effect, seen, needed, items, subset=subset), abs=0.04)
    assert simulated >= 0.8 - 0.04
    half = simulate_power(effect, truth, needed // 2, items, kind, level, simulations=300, seed=6, subset=subset)
    assert half < 0.65


def test_run_difference_averages_over_the_items_both_codecs_scored():
    from evalkit.listening.power import run_difference

    values = {
        ("i1", "a", "estoi"): 0.9,
        ("i1", "b", "estoi"): 0.7,
        ("i2", "a", "estoi"): 0.8,
        ("i2", "b", "estoi"): 0.7,
        ("i3", "a", "estoi"): 0.1,
    }
    assert run_difference(results(values), "estoi", "a", "b") == (pytest.approx(0.15), 2)
    with pytest.raises(ConfigError, match="no estoi values of codec 'c'"):
        run_difference(results(values), "estoi", "a", "c")
    with pytest.raises(ConfigError, match="no scored metric 'pesq'"):
        run_difference(results(values), "pesq", "a", "b")
    with pytest.raises(ConfigError, match="names 'a' twice"):
        run_difference(results(values), "estoi", "a", "a")


def test_numbers_that_would_run_for_hours_or_fill_memory_are_refused_at_once():
    spread = Spread(10.0, 3.0)
    with pytest.raises(ConfigError, match="simulated tests must be 1 to 100000, got 1000000000"):
        simulate_power(10.0, spread, 8, 4, simulations=10**9)
    with pytest.raises(ConfigError, match="would hold 4000000000 ratings"):
        simulate_power(10.0, spread, 2, 10**9, simulations=10)
    with pytest.raises(ConfigError, match="up to 2000 items, got 100000"):
        listeners_needed(10.0, spread, 100_000, 0.8, subset=Subset(500, 2))
    assert listeners_needed(10.0, spread, 100_000, 0.8, subset=Subset(200_000, 2)) >= 2  # complete: no sum


def test_an_incomplete_or_tiny_pilot_is_refused_with_what_it_lacks():
    pilot = simulated_pilot(Spread(10, 3), [60, 50], 5, 3, "mushra", seed=0)
    with pytest.raises(ConfigError, match="incomplete"):
        pilot_spread(pilot.iloc[1:])
    with pytest.raises(ConfigError, match="at least 3 listeners"):
        pilot_spread(pilot[pilot["participant"].isin(["p0", "p1"])])


def test_power_command_prints_the_count_and_its_simulated_power(capsys):
    assert (
        main(
            [
                "listening",
                "power",
                "--effect",
                "6",
                "--items",
                "6",
                "--noise",
                "12",
                "--interaction",
                "5",
                "--simulate",
                "200",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    needed = listeners_needed(6.0, Spread(12.0, 5.0), 6)
    assert f"listeners needed: {needed} " in out and "simulated power with" in out
    subset = ["--per-session", "12", "--test-conditions", "4", "--type", "acr"]
    args = ["listening", "power", "--effect", "0.4", "--items", "8", "--noise", "0.75", "--interaction", "0.25"]
    assert main([*args, *subset]) == 0
    out = capsys.readouterr().out
    needed = listeners_needed(0.4, Spread(0.75, 0.25), 8, subset=Subset(12, 4))
    assert (
        f"listeners needed: {needed} " in out
        and "design: each listener rates 12 of the 32 pages (8 items x 4 conditions)" in out
    )
    assert main([*args, "--per-session", "1", "--test-conditions", "4"]) == 1
    assert "2 or more pages per session" in capsys.readouterr().err
    assert main(["listening", "power", "--effect", "6", "--items", "6"]) == 1
    assert main(["listening", "power", "--effect", "6", "--items", "6", "--noise", "-1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("evalkit: error: power needs") and "--noise" in err[1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--effect", "nan", "--noise", "10"], "finite non-zero effect"),
        (["--effect", "inf", "--noise", "10"], "finite non-zero effect"),
        (["--effect", "5", "--noise", "nan"], "--noise must be a finite number"),
        (["--effect", "5", "--noise", "10", "--interaction", "-1"], "--interaction must be a finite number"),
        (["--effect", "5", "--noise", "10", "--simulate", "-3"], "--simulate must be 0"),
        (["--effect", "5", "--noise", "10", "--power", "1.5"], "a power between 0 and 1"),
        (["--noise", "10"], "--effect D, or --run RUN"),
        (["--effect", "5", "--noise", "10", "--run", "r", "--metric", "m", "--codecs", "a", "b"], "database"),
    ],
)
def test_bad_power_arguments_are_one_line_errors(args, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    assert main(["listening", "power", "--items", "6", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evalkit: error: ") and fragment in err


# -- rejections and repeat workers --------------------------------------------------------------


def test_rejections_and_duplicates_commands(sources, tmp_path, capsys):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'crowd.db'}"
    engine = connect(url)
    open_token = crowd_test(engine, sources, tmp_path)
    token = arrive(engine, open_token, "deaf")
    listening.accept_consent(engine, token)
    listening.submit_qualification(engine, token, {"hearing": "no"})
    arrive(engine, open_token, "keen")
    from test_listening_types import definition

    from evalkit.listening.spec import spec_from_dict

    second = definition("acr", name="acr-two", open_link=True, crowd=CROWD)
    listening.create_test(
        engine,
        spec_from_dict(second, base=sources, source="two.yaml"),
        stimulus_root=tmp_path / "two",
        cache_root=tmp_path / "cache",
    )
    listening.launch_test(engine, "acr-two")
    arrive(engine, listening.test_info(engine, "acr-two").open_token, "keen")
    capsys.readouterr()

    assert main(["listening", "rejections", "acr-test", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "deaf" in out and "qualification" in out and "keen" not in out
    assert main(["listening", "rejections", "acr-test", "--export", "csv", "--database", url]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert frame[["panel", "panel_id", "rule"]].values.tolist() == [["prolific", "deaf", "qualification"]]
    target = tmp_path / "out" / "rejected.csv"
    assert (
        main(
            ["listening", "rejections", "acr-test", "--record", "--export", "csv", "-o", str(target), "--database", url]
        )
        == 0
    )
    assert "recorded 0 new rejection(s)" in capsys.readouterr().out
    assert pd.read_csv(target)["panel_id"].tolist() == ["deaf"]
    assert main(["listening", "rejections", "acr-test", "--export", "csv", "-o", str(target), "--database", url]) == 1
    assert capsys.readouterr().err.strip() == f"evalkit: error: {target} exists; pass --force to overwrite it"

    assert main(["listening", "duplicates", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "keen" in out and "acr-test, acr-two" in out and "deaf" not in out
    assert main(["listening", "duplicates", "--export", "csv", "--database", url]) == 0
    assert pd.read_csv(io.StringIO(capsys.readouterr().out)).to_dict("records") == [
        {"panel": "prolific", "panel_id": "keen", "tests": 2, "names": "acr-test, acr-two"}
    ]

    assert main(["listening", "rejections", "nope", "--database", url]) == 1
    assert capsys.readouterr().err.strip() == "evalkit: error: no listening test named 'nope'"
    assert main(["listening", "rejections", "acr-two", "--database", url]) == 0
    assert capsys.readouterr().out.strip() == "no rejected sessions in acr-two"
