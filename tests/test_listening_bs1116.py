"""BS.1116 (double-blind triple stimulus with hidden reference): pages, stored grades, SDGs and post-screening."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from listening_helpers import hear_all, take_all
from scipy import stats
from test_listening_types import ITEMS, condition_names, create, definition, first_trial, sources  # noqa: F401

from evalkit import listening
from evalkit.errors import ConfigError
from evalkit.listening.analysis import load_test
from evalkit.listening.spec import spec_from_dict
from evalkit.listening.types.bs1116 import screen_listeners, sdg_frame, sdg_table
from evalkit.store.models import utcnow

GRADE = {"noisy": 4.0, "noisier": 2.5}  # what a careful listener gives each coded condition


def bs1116(**changes):
    return definition("bs1116", training={"items": ["alpha"]}, **changes)


def take(engine, name, answer):
    return take_all(engine, name, answer, seconds=1.1)


def test_bs1116_runs_to_sdgs_and_screens_out_a_listener_who_cannot_find_the_reference(engine, sources, tmp_path):  # noqa: F811
    spec = create(engine, sources, tmp_path, bs1116())
    assert [c.name for c in spec.conditions] == ["reference", "noisy", "noisier"]
    names = condition_names(engine)
    rng = np.random.default_rng(5)
    hidden_first = []

    def careful(entry, trial):
        assert trial.reference is not None and len(trial.stimuli) == 2 and trial.prompt["labels"] == ["A", "B"]
        assert trial.prompt["scale"]["name"] == "bs1116" and trial.prompt["scale"]["step"] == 0.1
        keys = [names[c] for c in entry["conditions"]]
        assert "reference" in keys and len(set(keys)) == 2
        hidden_first.append(keys[0] == "reference")
        grades = [5.0 if k == "reference" else round(GRADE[k] + rng.uniform(-0.4, 0.4), 1) for k in keys]
        return dict(zip(trial.stimuli, grades))

    def careless(entry, trial):  # grades at random: the hidden reference is not found
        return {stimulus: round(float(rng.uniform(2.0, 5.0)), 1) for stimulus in trial.stimuli}

    good = [take(engine, "bs1116-test", careful) for _ in range(4)]
    bad = take(engine, "bs1116-test", careless)
    assert set(hidden_first) == {True, False}  # which of A and B is the hidden reference is drawn per page

    loaded = load_test(engine, "bs1116-test")
    rows = loaded.responses
    assert len(rows) == 5 * len(ITEMS) * 2 * 2 and set(rows["scale"]) == {"bs1116"}
    assert set(rows["slot"]) == {0, 1} and (rows["condition"] != rows["other"]).all()
    assert ((rows["score"] * 10).round() == rows["score"] * 10).all()
    assert set(loaded.screening.excluded) == {bad}
    assert (
        "not significantly below 0" in loaded.screening.excluded[bad]
        or "hidden reference below" in loaded.screening.excluded[bad]
    )
    assert sorted(loaded.kept["participant"].unique()) == sorted(good)

    table = loaded.type.analyse(loaded.kept, loaded.setup)["sdg"].set_index("condition")
    assert list(table.index) == ["noisy", "noisier"]
    sdgs = sdg_frame(loaded.kept)
    assert len(sdgs) == 4 * len(ITEMS) * 2 and (sdgs["reference_grade"] == 5.0).all()
    for condition, group in sdgs.groupby("condition"):
        values = group["sdg"].to_numpy()
        low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        assert table.loc[condition, "sdg"] == pytest.approx(values.mean())
        assert table.loc[condition, "sdg"] == pytest.approx(GRADE[condition] - 5.0, abs=0.25)
        assert (table.loc[condition, "ci_low"], table.loc[condition, "ci_high"]) == pytest.approx((low, high))
        assert table.loc[condition, "trials"] == 4 * len(ITEMS) and table.loc[condition, "listeners"] == 4


def test_bs1116_page_wants_both_grades_with_one_decimal(engine, sources, tmp_path):  # noqa: F811
    create(engine, sources, tmp_path, bs1116())
    token, trial = first_trial(engine, "bs1116-test")
    assert trial.phase == "training"
    at = utcnow()
    while trial.phase == "training":  # training pages are not graded
        at = hear_all(engine, token, trial, at, 1.1)
        trial = listening.submit_trial(engine, token, trial.phase, trial.position, {}, now=at).trial
    at = hear_all(engine, token, trial, at + timedelta(seconds=1), 1.1)
    a, b = trial.stimuli
    for bad in ({a: 5.0}, {a: 5.0, b: 3.55}, {a: 5.0, b: 0.9}, {a: 5.0, b: 5.1}, {a: "5", b: 4.0}, {a: True, b: 4.0}):
        with pytest.raises(listening.FlowError, match="not graded"):
            listening.submit_trial(engine, token, "test", 0, bad, now=at)
    assert listening.submit_trial(engine, token, "test", 0, {a: 5, b: 3.7}, now=at).trial.position == 1


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"reference": False}, ["reference"]),
        ({"post_screening": {"alpha": 0.9}}, ["post_screening.alpha", "outside"]),
        ({"post_screening": {"limit": 1}}, ["post_screening.limit", "unknown key"]),
        ({"post_screening": {"max_misidentified": 2}}, ["post_screening.max_misidentified"]),
        ({"conditions": []}, ["conditions"]),
    ],
)
def test_bad_bs1116_definitions_name_the_key(sources, changes, fragments):  # noqa: F811
    with pytest.raises(ConfigError) as info:
        spec_from_dict(bs1116(**changes), base=sources, source="t.yaml")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def sdgs_of(listeners: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "participant": who,
                "trial": k,
                "item": "i",
                "condition": "c",
                "grade": 5 + v,
                "reference_grade": 5.0,
                "sdg": v,
            }
            for who, values in listeners.items()
            for k, v in enumerate(values)
        ]
    )


def test_post_screening_matches_scipys_one_sided_t_test_and_keeps_its_reasons():
    rng = np.random.default_rng(12)
    careful = list(np.round(-1.5 + 0.5 * rng.standard_normal(12), 1))
    guessing = list(np.round(rng.normal(0.0, 1.0, 12), 1))
    swapped = [-2.0] * 8 + [1.0] * 4  # clearly hears a difference, but a third of the time grades the wrong one
    outcome = screen_listeners(sdgs_of({"careful": careful, "guessing": guessing, "swapped": swapped}))
    table = outcome.table.set_index("participant")
    for who, values in (("careful", careful), ("guessing", guessing), ("swapped", swapped)):
        assert table.loc[who, "p_value"] == pytest.approx(stats.ttest_1samp(values, 0.0, alternative="less").pvalue)
    assert outcome.kept == ("careful",)
    assert "not significantly below 0" in outcome.excluded["guessing"]
    assert "33% of trials" in outcome.excluded["swapped"] and "t-test" not in outcome.excluded["swapped"]
    relaxed = screen_listeners(sdgs_of({"swapped": swapped}), alpha=None, max_misidentified=0.5)
    assert relaxed.kept == ("swapped",) and not relaxed.excluded
    constant = screen_listeners(sdgs_of({"sure": [-1.0] * 3, "deaf": [0.0] * 3}))
    assert constant.kept == ("sure",) and "deaf" in constant.excluded


def test_sdg_table_pairs_each_coded_grade_with_its_own_hidden_reference():
    frame = pd.DataFrame(
        [
            {"participant": "p", "trial": 0, "item": "i", "condition": "reference", "kind": "reference", "score": 4.8},
            {"participant": "p", "trial": 0, "item": "i", "condition": "c", "kind": "codec", "score": 3.0},
            {"participant": "p", "trial": 1, "item": "j", "condition": "c", "kind": "codec", "score": 5.0},
            {"participant": "p", "trial": 1, "item": "j", "condition": "reference", "kind": "reference", "score": 4.0},
        ]
    )
    sdgs = sdg_frame(frame)
    assert sdgs["sdg"].tolist() == pytest.approx([-1.8, 1.0])
    table = sdg_table(sdgs).iloc[0]
    assert (table["condition"], table["trials"], table["sdg"]) == ("c", 2, pytest.approx(-0.4))
