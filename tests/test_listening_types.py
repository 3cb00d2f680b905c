"""Listening-test types beyond MUSHRA: ACR and AB from definition to sessions, stored typed responses and statistics."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import optimize, stats
from sqlalchemy import select

from evalkit import listening
from evalkit.errors import ConfigError
from evalkit.listening.analysis import load_test
from evalkit.listening.spec import spec_from_dict
from evalkit.listening.types.ab import bradley_terry, preference_table
from evalkit.listening.types.acr import mos_table
from evalkit.store.models import utcnow
from evalkit.store.models_mushra import MushraCondition, MushraParticipant, MushraSession

ITEMS = ["alpha", "bravo", "charlie"]
SECONDS = 1.0
TRUTH = {"reference": 5, "noisy": 4, "noisier": 2}  # what a careful listener hears in each condition


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Three 1 s items at 16 kHz, with a noisy and a noisier copy of each (pre-rendered conditions)."""
    folder = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(2)
    t = np.arange(int(16000 * SECONDS)) / 16000
    for k, name in enumerate(ITEMS):
        x = 0.1 * np.sin(2 * np.pi * (200 + 50 * k) * t)
        sf.write(folder / f"{name}.wav", x, 16000, subtype="PCM_16")
        for label, level in (("noisy", 0.01), ("noisier", 0.05)):
            sf.write(folder / f"{name}-{label}.wav", x + level * rng.standard_normal(len(t)), 16000, subtype="PCM_16")
    return folder


def definition(kind, **changes):
    data = {
        "type": kind,
        "name": f"{kind}-test",
        "items": [{"id": i, "path": f"{i}.wav"} for i in ITEMS],
        "conditions": [
            {"name": "noisy", "files": "{item}-noisy.wav"},
            {"name": "noisier", "files": "{item}-noisier.wav"},
        ],
        "sample_rate": 16000,
        "randomization": {"seed": 11},
        "training": {"items": []},
    }
    return {**data, **changes}


def create(engine, sources, tmp_path, data):
    spec = spec_from_dict(data, base=sources, source=f"{data['name']}.yaml")
    listening.create_test(engine, spec, stimulus_root=tmp_path / "stimuli", cache_root=tmp_path / "cache")
    listening.launch_test(engine, data["name"])
    return spec


def condition_names(engine):
    with engine.connect() as connection:
        return dict(connection.execute(select(MushraCondition.id, MushraCondition.key)).all())


def plan_of(engine, code):
    with engine.connect() as connection:
        return connection.execute(
            select(MushraSession.plan).join(MushraParticipant).where(MushraParticipant.code == code)
        ).scalar_one()


def first_trial(engine, name):
    """A new invited listener's token and first trial page."""
    (invite,) = listening.invite(engine, name)
    listening.enter(engine, invite.token)
    listening.accept_consent(engine, invite.token)
    listening.finish_instructions(engine, invite.token)
    return invite.token, listening.confirm_level(engine, invite.token).trial


def take(engine, name, answer):
    """One invited listener through the whole test; `answer(trial plan entry, page)` gives each page's response."""
    (invite,) = listening.invite(engine, name)
    token = invite.token
    listening.enter(engine, token)
    listening.accept_consent(engine, token)
    listening.finish_instructions(engine, token)
    page = listening.confirm_level(engine, token)
    while page.phase == "trials":
        trial = page.trial
        at = utcnow()
        for stimulus in trial.stimuli:  # each heard to its end, by the server's clock
            listening.record_play(engine, token, trial.phase, trial.position, stimulus, 0.0, None, at)
            at += timedelta(seconds=SECONDS + 0.05)
        listening.record_play(engine, token, trial.phase, trial.position, None, 0.0, None, at)
        entry = plan_of(engine, page.participant)["test"][trial.position]
        page = listening.submit_trial(engine, token, trial.phase, trial.position, answer(entry, trial), now=at)
    assert page.phase == "done" and page.completion_code
    return page.participant


# -- ACR ------------------------------------------------------------------------------------


def test_acr_runs_from_definition_to_mos_and_rejects_a_careless_listener(engine, sources, tmp_path):
    data = definition(
        "acr",
        gold=[{"item": "alpha", "condition": "reference", "accept": [4, 5]}],
        rejection={"gold": 0, "constant": True},
    )
    spec = create(engine, sources, tmp_path, data)
    assert spec.type == "acr" and [c.name for c in spec.conditions] == ["reference", "noisy", "noisier"]
    names = condition_names(engine)
    rng = np.random.default_rng(4)

    def careful(entry, trial):
        assert trial.reference is None and len(trial.stimuli) == 1 and trial.prompt["scale"]["name"] == "acr"
        if entry.get("kind") == "gold":
            return {"choice": 5}
        return {"choice": int(np.clip(TRUTH[names[entry["conditions"][0]]] - rng.integers(0, 2), 1, 5))}

    good = [take(engine, "acr-test", careful) for _ in range(3)]
    careless = take(engine, "acr-test", lambda entry, trial: {"choice": 3})

    loaded = load_test(engine, "acr-test")
    assert set(loaded.rejected) == {careless}
    assert "gold: 1 gold clip(s) answered wrongly" in loaded.rejected[careless]
    assert "constant: every one of the session's 9 ratings is 3" in loaded.rejected[careless]
    assert sorted(loaded.kept["participant"].unique()) == sorted(good)
    assert len(loaded.responses) == 4 * 9  # the gold page's answer is a check, never a response
    assert set(loaded.responses["scale"]) == {"acr"} and loaded.responses["choice"].isna().all()

    table = loaded.type.analyse(loaded.kept, loaded.setup)["mos"].set_index("condition")
    assert list(table.index) == ["reference", "noisy", "noisier"]
    for condition, group in loaded.kept.groupby("condition"):
        scores = group["score"].to_numpy()
        low, high = stats.t.interval(0.95, len(scores) - 1, loc=scores.mean(), scale=stats.sem(scores))
        assert table.loc[condition, "mos"] == pytest.approx(scores.mean())
        assert (table.loc[condition, "ci_low"], table.loc[condition, "ci_high"]) == pytest.approx((low, high))
        assert table.loc[condition, "ratings"] == 9 and table.loc[condition, "listeners"] == 3


def test_acr_page_refuses_an_answer_off_the_scale_and_an_unheard_clip(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("acr"))
    token, trial = first_trial(engine, "acr-test")
    with pytest.raises(listening.FlowError, match="not heard|not played|heard"):
        listening.submit_trial(engine, token, "test", 0, {"choice": 4})
    at = utcnow()
    listening.record_play(engine, token, "test", 0, trial.stimuli[0], 0.0, None, at)
    listening.record_play(engine, token, "test", 0, None, 0.0, None, at + timedelta(seconds=0.3))
    with pytest.raises(listening.FlowError):  # 0.3 s of a 1 s clip: P.808 asks for all of it
        listening.submit_trial(engine, token, "test", 0, {"choice": 4}, now=at + timedelta(seconds=0.3))
    listening.record_play(engine, token, "test", 0, trial.stimuli[0], 0.0, None, at + timedelta(seconds=1))
    end = at + timedelta(seconds=2.1)
    listening.record_play(engine, token, "test", 0, None, 0.0, None, end)
    for bad in ({"choice": 3.5}, {"choice": 7}, {"choice": "good"}, {}):
        with pytest.raises(listening.FlowError, match="choose an answer"):
            listening.submit_trial(engine, token, "test", 0, bad, now=end)
    assert listening.submit_trial(engine, token, "test", 0, {"choice": 4}, now=end).trial.position == 1


def test_ccr_scores_are_sign_corrected_whatever_the_order(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("ccr"))
    names = condition_names(engine)
    truth = {"noisy": -1, "noisier": -3}  # how each sounds against the reference
    orders = []

    def compares(entry, trial):
        first, second = (names[c] for c in entry["conditions"])
        orders.append(first == "reference")
        assert trial.prompt["labels"] == ["First", "Second"] and len(trial.stimuli) == 2 and trial.reference is None
        return {"choice": truth[second] if first == "reference" else -truth[first]}

    take(engine, "ccr-test", compares)
    take(engine, "ccr-test", compares)
    assert set(orders) == {True, False}  # both orders were played
    loaded = load_test(engine, "ccr-test")
    rows = loaded.responses
    assert len(rows) == 2 * len(ITEMS) * 2 and set(rows["other"]) == {"reference"}
    assert (rows["score"] == rows["condition"].map(truth)).all()
    table = loaded.type.analyse(loaded.kept, loaded.setup)["cmos"].set_index("condition")
    assert table.loc["noisy", "cmos"] == -1 and table.loc["noisier", "cmos"] == -3


def test_dcr_plays_the_reference_first_and_stores_the_degradation_rating(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("dcr"))
    names = condition_names(engine)
    annoying = {"noisy": 4, "noisier": 2}

    def rates(entry, trial):
        reference, processed = (names[c] for c in entry["conditions"])
        assert reference == "reference" and trial.prompt["labels"] == ["Reference", "Processed"]
        return {"choice": annoying[processed]}

    take(engine, "dcr-test", rates)
    loaded = load_test(engine, "dcr-test")
    assert (
        set(loaded.responses["scale"]) == {"dcr"}
        and (loaded.responses["score"] == loaded.responses["condition"].map(annoying)).all()
    )
    table = loaded.type.analyse(loaded.kept, loaded.setup)["dmos"].set_index("condition")
    assert table.loc["noisy", "dmos"] == 4 and table.loc["noisier", "ratings"] == len(ITEMS)


# -- AB -------------------------------------------------------------------------------------


def test_ab_unforced_preferences_are_stored_typed_and_counted(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("ab", forced=False))
    names = condition_names(engine)
    firsts = []

    def prefers_noisy(entry, trial):
        assert trial.reference is None and trial.prompt["labels"] == ["A", "B"]
        assert [o["label"] for o in trial.prompt["options"]] == ["A", "B", "No preference"]
        firsts.append(names[entry["conditions"][0]])
        if len(firsts) == 1:  # the very first page: no preference
            return {"choice": "none"}
        return {"choice": trial.stimuli[[names[c] for c in entry["conditions"]].index("noisy")]}

    people = [take(engine, "ab-test", prefers_noisy) for _ in range(4)]
    assert set(firsts) == {"noisy", "noisier"}  # which one is A is drawn per page

    loaded = load_test(engine, "ab-test")
    rows = loaded.responses
    assert len(rows) == 4 * 3 and set(rows["response"]) == {"choice"} and rows["score"].isna().all()
    decided = rows[rows["choice"] != "none"]
    assert (decided["chosen"] == "noisy").all() and decided["chosen"].notna().all()
    assert ((decided["choice"] == "a") == (decided["condition"] == "noisy")).all()  # the label matches the slot
    assert rows.loc[rows["choice"] == "none", "chosen"].isna().all()
    table = loaded.type.analyse(loaded.kept, loaded.setup)["preferences"].iloc[0]
    wins = len(decided)
    assert (table["first"], table["second"]) == ("noisier", "noisy")
    assert (table["second_wins"], table["first_wins"], table["no_preference"]) == (wins, 0, 12 - wins)
    assert table["p_value"] == pytest.approx(stats.binomtest(0, wins, 0.5).pvalue)
    assert sorted(loaded.kept["participant"].unique()) == sorted(people)


def test_ab_forced_refuses_no_preference(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("ab"))
    token, trial = first_trial(engine, "ab-test")
    assert [o["label"] for o in trial.prompt["options"]] == ["A", "B"]
    at = utcnow()
    for stimulus in trial.stimuli:
        listening.record_play(engine, token, "test", 0, stimulus, 0.0, None, at)
        at += timedelta(seconds=1.2)
    listening.record_play(engine, token, "test", 0, None, 0.0, None, at)
    for bad in ({"choice": "none"}, {"choice": "A"}, {"choice": trial.stimuli[0], "extra": 1}):
        with pytest.raises(listening.FlowError):
            listening.submit_trial(engine, token, "test", 0, bad, now=at)
    assert listening.submit_trial(engine, token, "test", 0, {"choice": trial.stimuli[1]}, now=at).trial.position == 1


def test_abx_stores_what_x_was_and_what_the_listener_said(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("abx"))
    rng = np.random.default_rng(6)
    shown = []

    def knows(entry, trial):
        a, b, x = entry["conditions"]
        assert x in (a, b) and a != b and len(set(trial.stimuli)) == 3  # X has an id of its own
        shown.append(x == a)
        return {"choice": trial.stimuli[0] if x == a else trial.stimuli[1]}

    def guesses(entry, trial):
        return {"choice": trial.stimuli[int(rng.integers(0, 2))]}

    expert = take(engine, "abx-test", knows)
    others = [take(engine, "abx-test", guesses) for _ in range(2)]
    loaded = load_test(engine, "abx-test")
    rows = loaded.responses
    assert len(rows) == 3 * 3 and set(rows["slot"]) == {2} and set(rows["choice"]) <= {"a", "b"}
    assert (
        set(rows["condition"]) | set(rows["other"]) == {"noisy", "noisier"}
        and (rows["condition"] != rows["other"]).all()
    )
    tables = loaded.type.analyse(loaded.kept, loaded.setup)
    mine = tables["by_listener"].set_index("participant").loc[expert]
    assert (mine["trials"], mine["correct"]) == (3, 3)
    assert mine["p_value"] == pytest.approx(stats.binomtest(3, 3, 0.5, alternative="greater").pvalue)
    pair = tables["by_pair"].iloc[0]
    right = int((rows["chosen"] == rows["condition"]).sum())
    assert (pair["first"], pair["second"], pair["trials"], pair["correct"]) == ("noisier", "noisy", 9, right)
    assert sorted(loaded.kept["participant"].unique()) == sorted([expert, *others])


def test_abx_x_is_served_with_bytes_of_its_own(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("abx"))
    token, trial = first_trial(engine, "abx-test")
    entry = plan_of(engine, listening.current_page(engine, token).participant)["test"][0]
    same = 0 if entry["conditions"][2] == entry["conditions"][0] else 1  # the slot X repeats
    audio = [listening.stimulus_audio(engine, grant) for grant in trial.audio]
    assert len(audio) == 3 and len({len(a) for a in audio}) == 1
    assert audio[2] != audio[same]  # the same condition, dithered afresh: no byte comparison tells X
    with pytest.raises(listening.FlowError, match="X is A or B"):
        listening.submit_trial(engine, token, "test", 0, {"choice": trial.stimuli[2]})


# -- statistics against references ----------------------------------------------------------


def test_mos_table_matches_scipy_t_intervals():
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(
        {
            "participant": np.repeat([f"p{k}" for k in range(6)], 10),
            "condition": np.tile(["a", "b"], 30),
            "score": rng.integers(1, 6, 60).astype(float),
        }
    )
    table = mos_table(frame).set_index("condition")
    for condition, group in frame.groupby("condition"):
        low, high = stats.t.interval(0.95, len(group) - 1, loc=group["score"].mean(), scale=stats.sem(group["score"]))
        assert table.loc[condition, ["ci_low", "ci_high"]].tolist() == pytest.approx([low, high])


def pairs(counts):
    """A choice frame from {(winner, loser): count}."""
    rows = [{"condition": w, "other": loser, "chosen": w} for (w, loser), n in counts.items() for _ in range(n)]
    return pd.DataFrame(rows)


def test_bradley_terry_is_the_maximum_likelihood_estimate():
    counts = {("a", "b"): 7, ("b", "a"): 3, ("a", "c"): 8, ("c", "a"): 2, ("b", "c"): 6, ("c", "b"): 4}
    table = bradley_terry(pairs(counts)).set_index("condition")

    def negative_log_likelihood(log_strength):
        s = dict(zip("abc", np.append(log_strength, 0.0)))
        return -sum(n * (s[w] - np.logaddexp(s[w], s[loser])) for (w, loser), n in counts.items())

    best = optimize.minimize(negative_log_likelihood, np.zeros(2), method="BFGS").x
    expected = np.exp(np.append(best, 0.0))
    expected /= expected.sum()
    assert table.loc[["a", "b", "c"], "strength"].tolist() == pytest.approx(expected.tolist(), rel=1e-4)
    assert table["wins"].sum() == 30 and table.index[0] == "a"
    two = bradley_terry(pairs({("x", "y"): 3, ("y", "x"): 1})).set_index("condition")
    assert two.loc["x", "strength"] / two.loc["y", "strength"] == pytest.approx(3.0)  # closed form: w_x / w_y


def test_preference_shares_have_wilson_intervals_and_binomial_p():
    table = preference_table(pairs({("a", "b"): 14, ("b", "a"): 6})).iloc[0]
    assert (table["first_wins"], table["second_wins"], table["first_share"]) == (14, 6, 0.7)
    low, high = stats.binomtest(14, 20).proportion_ci(0.95, method="wilson")
    assert (table["ci_low"], table["ci_high"]) == pytest.approx((low, high))
    assert table["p_value"] == pytest.approx(stats.binomtest(14, 20, 0.5).pvalue)


# -- definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (definition("triangle"), ["type:", "mushra"]),
        (definition("acr", forced=True), ["forced", "unknown key"]),
        (definition("ab", gold=[]), ["gold", "unknown key"]),
        (definition("abx", forced=False), ["forced", "unknown key"]),
        (definition("ccr", reference=False), ["reference", "always has"]),
        (
            definition("acr", gold=[{"item": "alpha", "condition": "nope", "accept": [5]}]),
            ["gold[0].condition", "nope"],
        ),
        (definition("acr", gold=[{"item": "alpha", "condition": "noisy", "accept": [6]}]), ["gold[0].accept"]),
        (definition("acr", trials_per_session=0), ["trials_per_session"]),
        (definition("ab", conditions=[{"name": "noisy", "files": "{item}-noisy.wav"}]), ["conditions", "at least two"]),
        (definition("mushra"), ["training.items", "non-empty"]),
    ],
)
def test_bad_definitions_name_the_key(sources, data, fragments):
    with pytest.raises(ConfigError) as info:
        spec_from_dict(data, base=sources, source="t.yaml")
    message = str(info.value)
    assert message.startswith("t.yaml: ")
    for fragment in fragments:
        assert fragment in message, message


# -- migration 0009 -------------------------------------------------------------------------


@pytest.mark.parametrize("revision", ["0008", "0005"])  # 0006 and 0009 copy tables that have children on SQLite
def test_mushra_ratings_go_down_and_back_up_intact(engine, sources, tmp_path, revision):
    from conftest import take_mushra_test
    from sqlalchemy import inspect, text

    from evalkit.store.db import current_revision, downgrade, head_revision, migrate

    mushra = definition("mushra", name="m", training={"items": ["alpha"]}, open_link=True)
    spec = create(engine, sources, tmp_path, mushra)
    info = listening.test_info(engine, "m")
    rng = np.random.default_rng(3)
    take_mushra_test(engine, info.open_token, lambda k: rng.integers(0, 101))
    take(engine, create(engine, sources, tmp_path / "acr", definition("acr")).name, lambda entry, trial: {"choice": 4})
    before = listening.ratings_frame(engine, "m")
    assert len(before) == len(ITEMS) * len(spec.conditions)
    queries = {
        table: f"SELECT count(*) FROM {table} WHERE test_id = (SELECT id FROM mushra_tests WHERE name = 'm')"
        for table in ("mushra_participants", "mushra_sessions", "mushra_events")
    }
    queries["mushra_trials"] = (
        "SELECT count(*) FROM mushra_trials JOIN mushra_sessions ON mushra_sessions.id = "
        "session_id WHERE test_id = (SELECT id FROM mushra_tests WHERE name = 'm')"
    )

    def rows():
        with engine.connect() as connection:
            return {table: connection.execute(text(query)).scalar_one() for table, query in queries.items()}

    counted = rows()
    assert counted["mushra_events"] > 0

    downgrade(engine, revision)
    tables = set(inspect(engine).get_table_names())
    assert "mushra_ratings" in tables and not {"mushra_responses", "mushra_rejections"} & tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM mushra_ratings")).scalar_one() == len(before)
        assert connection.execute(text("SELECT name FROM mushra_tests")).scalars().all() == [
            "m"
        ]  # ACR cannot live there
        plan = connection.execute(text("SELECT plan FROM mushra_sessions")).scalar_one()
    plan = plan if isinstance(plan, dict) else json.loads(plan)
    assert all("sliders" in trial and "conditions" not in trial for trial in plan["test"] + plan["training"])

    migrate(engine)
    assert current_revision(engine) == head_revision() == "0009"
    after = listening.ratings_frame(engine, "m")
    columns = ["participant", "trial", "item", "condition", "slider", "score"]
    pd.testing.assert_frame_equal(after[columns], before[columns])
    assert rows() == counted and counted["mushra_trials"] == len(ITEMS) + 1  # a copied table lost no child rows
    assert listening.current_page is not None and load_test(engine, "m").type.name == "mushra"


def test_acr_trapping_clips_are_served_checked_and_never_stored_as_ratings(engine, sources, tmp_path):
    create(engine, sources, tmp_path, definition("acr", trapping=[{"path": "bravo.wav", "answer": 2}]))
    names = condition_names(engine)

    def obeys(entry, trial):
        assert len(trial.audio) == 1 and listening.stimulus_audio(engine, trial.audio[0])  # the clip is served
        return {"choice": 2 if entry.get("kind") == "trap" else TRUTH[names[entry["conditions"][0]]]}

    def ignores(entry, trial):
        return {"choice": 5 if entry.get("kind") == "trap" else TRUTH[names[entry["conditions"][0]]]}

    good, bad = take(engine, "acr-test", obeys), take(engine, "acr-test", ignores)
    loaded = load_test(engine, "acr-test")
    assert (
        list(loaded.rejected) == [bad]
        and "trapping: 1 trapping clip(s) answered wrongly: 5 (expected 2)" in loaded.rejected[bad]
    )
    assert len(loaded.responses) == 2 * 9 and loaded.responses["item"].notna().all()  # traps are checks, not ratings
    assert sorted(loaded.kept["participant"].unique()) == [good]
