"""MUSHRA storage, admin and listener flow on SQLite and, with $EVALKIT_TEST_PG_URL, PostgreSQL."""

from __future__ import annotations

import io
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from sqlalchemy import func, select

from evalkit import mushra
from evalkit.errors import ConfigError
from evalkit.mushra import listener
from evalkit.mushra.spec import spec_from_dict
from evalkit.mushra.tokens import trial_ids
from evalkit.store import connect
from evalkit.store.models_mushra import (
    MushraCondition, MushraEvent, MushraParticipant, MushraRating, MushraSession, MushraStimulus, MushraTrial,
)

ITEMS = ["alpha", "bravo", "charlie", "delta", "echo"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Five 1.5 s items (modulated tones in noise, 16 kHz) and a noisier pre-rendered copy of each."""
    folder = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(1)
    t = np.arange(24000) / 16000
    for k, name in enumerate(ITEMS):
        x = 0.1 * np.sin(2 * np.pi * (180 + 40 * k) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        x += 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"{name}.wav", x, 16000, subtype="PCM_16")
        sf.write(folder / f"{name}-noisy.wav", x + 0.02 * rng.standard_normal(len(t)), 16000, subtype="PCM_16")
    return folder


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # shared: codecs run once per module


def make_spec(sources, **changes):
    data = {"name": "listening", "title": "A listening test", "items": [{"id": i, "path": f"{i}.wav"} for i in ITEMS],
            "conditions": ["g711-alaw", {"name": "noisy", "files": "{item}-noisy.wav"}], "sample_rate": 16000,
            "randomization": {"seed": 7}, "open_link": True,
            "questionnaire": [{"id": "phones", "text": "Headphones?", "type": "choice", "choices": ["yes", "no"]}]}
    return spec_from_dict({**data, **changes}, base=sources, source="listening.yaml")


@pytest.fixture
def launched(engine, sources, cache, tmp_path):
    mushra.create_test(engine, make_spec(sources), stimulus_root=tmp_path / "stimuli", cache_root=cache)
    return mushra.launch_test(engine, "listening")


def count(engine, model, *where) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def to_trials(engine, token):
    mushra.enter(engine, token)
    mushra.accept_consent(engine, token)
    mushra.finish_instructions(engine, token)
    return mushra.confirm_level(engine, token, {"volume": 0.7})


def finish(engine, token, page, scores=None):
    trial = page.trial
    plays = [{"stimulus": s, "start": 0.0, "end": 1.5, "at": 10.0 * k} for k, s in enumerate(trial.stimuli)]
    plays.append({"stimulus": trial.reference, "start": 0.0, "end": 1.0})
    ratings = scores or {s: float(10 * k) for k, s in enumerate(trial.stimuli)}
    return mushra.submit_trial(engine, token, trial.phase, trial.position, ratings, plays, {"seconds": 12.5})


def values(data):
    """Every value (not field name) in a page, recursively."""
    for value in data.values() if isinstance(data, dict) else data:
        if isinstance(value, (dict, list, tuple)):
            yield from values(value)
        else:
            yield value


def session_row(engine, token):
    from evalkit.mushra.tokens import token_hash

    with engine.connect() as connection:
        return connection.execute(select(MushraSession).join(MushraParticipant).where(
            MushraParticipant.token_hash == token_hash(token))).one()


# -- creating a test -------------------------------------------------------------------


def test_created_test_stores_levelled_matching_stimuli(engine, launched):
    assert launched.status == "open" and launched.items == 5 and launched.open_token
    assert launched.conditions == ("reference", "anchor-lp35", "anchor-lp70", "g711-alaw", "noisy")
    with engine.connect() as connection:
        rows = pd.DataFrame(connection.execute(select(MushraStimulus, MushraCondition.key)
                                               .join(MushraCondition)).mappings().all())
    assert len(rows) == 25 and (rows["sample_rate"] == 16000).all() and (rows["channels"] == 1).all()
    assert rows.groupby("item_id")["frames"].nunique().eq(1).all()
    by = rows.set_index(["item_id", "key"])
    for item in rows["item_id"].unique():
        reference = by.loc[(item, "reference")]
        assert reference["loudness"] == pytest.approx(-26.0, abs=0.05)
        assert by.loc[(item, "anchor-lp35"), "gain_db"] == reference["gain_db"]  # anchors keep the reference's gain
        assert by.loc[(item, "noisy"), "loudness"] == pytest.approx(-26.0, abs=0.05)  # others are normalised
    for row in rows.itertuples():
        data = (Path(launched.stimulus_dir) / row.path).read_bytes()
        audio, rate = sf.read(io.BytesIO(data), dtype="int16")
        assert rate == 16000 and data[:4] == b"fLaC" and len(audio) == row.frames


def test_existing_test_is_refused_unless_replaced(engine, launched, sources, cache, tmp_path):
    with pytest.raises(ConfigError, match="exists"):
        mushra.create_test(engine, make_spec(sources), stimulus_root=tmp_path / "s2", cache_root=cache)
    mushra.enter(engine, mushra.invite(engine, "listening")[0].token)
    with pytest.raises(ConfigError, match="1 listener session"):
        mushra.create_test(engine, make_spec(sources), stimulus_root=tmp_path / "s2", cache_root=cache, replace=True)


# -- the listener's path ---------------------------------------------------------------


def test_full_path_stores_every_rating_and_exports(engine, launched):
    token = mushra.invite(engine, "listening", labels=["first"])[0].token
    page = to_trials(engine, token)
    assert page.phase == "training" and not page.trial.requires_ratings
    page = finish(engine, token, page)
    submitted = []
    while page.phase == "trials":
        assert page.trial.requires_ratings and page.done == page.trial.position
        scores = {s: float(np.random.default_rng(page.trial.position).integers(0, 101)) for s in page.trial.stimuli}
        submitted.append((page.trial.position, scores))
        page = finish(engine, token, page, scores)
    page = mushra.submit_questionnaire(engine, token, {"phones": "yes"})
    assert page.phase == "done" and page.completion_code and page.done == page.total == 5
    frame = mushra.ratings_frame(engine, "listening")
    assert len(frame) == 25 and count(engine, MushraRating) == 25  # training ratings were not stored
    session = session_row(engine, token)
    with engine.connect() as connection:
        keys = dict(connection.execute(select(MushraCondition.id, MushraCondition.key)).all())
    for position, scores in submitted:  # every rating lands on the condition behind its opaque id
        trial = session.plan["test"][position]
        _, ids = trial_ids(session.secret, "test", position, trial["sliders"])
        got = frame[frame["trial"] == position].set_index("condition")["score"]
        assert {keys[c]: scores[i] for c, i in zip(trial["sliders"], ids)} == got.to_dict()
    back = pd.read_csv(io.StringIO(mushra.export_ratings_csv(engine, "listening")))
    assert list(back.columns) == list(frame.columns) and back["score"].tolist() == frame["score"].tolist()
    assert mushra.progress_summary(engine, "listening")["completed"] == 1


def test_nothing_the_browser_gets_names_a_condition_item_or_file(engine, launched, sources):
    token = mushra.join_open_link(engine, launched.open_token)
    seen = [mushra.enter(engine, token)]
    seen += [mushra.accept_consent(engine, token), mushra.finish_instructions(engine, token)]
    audio = [mushra.stimulus_audio(engine, token, seen[-1].level_stimulus)]
    seen.append(mushra.confirm_level(engine, token))
    while seen[-1].trial:
        trial = seen[-1].trial
        audio += [mushra.stimulus_audio(engine, token, s) for s in (trial.reference, *trial.stimuli)]
        seen.append(finish(engine, token, seen[-1]))
    seen.append(mushra.submit_questionnaire(engine, token, {"phones": "no"}))
    text_seen = repr([list(values(asdict(page))) for page in seen])
    # "reference" is left out: the labelled reference button is public (and named in the instructions).
    secrets = [*launched.conditions[1:], "g711", "alaw", "anchor", "lp35", "lp70", *ITEMS, str(sources),
               launched.stimulus_dir, ".wav", ".flac"]
    for secret in secrets:
        assert secret not in text_seen, secret
        assert all(secret.encode() not in data for data in audio), secret


def test_resume_lands_exactly_where_the_listener_stood(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    page = finish(engine, token, page)
    again = mushra.enter(engine, token)  # a new tab: same trial, same ids, same order
    assert again == page and again.trial.position == 1
    assert count(engine, MushraEvent, MushraEvent.kind == "resume") == 1
    assert count(engine, MushraRating) == 5


def test_next_is_refused_until_all_played_and_rated_and_nothing_is_written(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    trial = page.trial
    plays = [{"stimulus": s, "start": 0, "end": 1} for s in trial.stimuli[:-1]]
    ratings = {s: 50 for s in trial.stimuli}
    with pytest.raises(mushra.FlowError, match=f"slider {len(trial.stimuli)} not played"):
        mushra.submit_trial(engine, token, "test", 0, ratings, plays)
    plays.append({"stimulus": trial.stimuli[-1], "start": 0, "end": 1})
    with pytest.raises(mushra.FlowError, match="slider 1 not rated"):
        mushra.submit_trial(engine, token, "test", 0, {**ratings, trial.stimuli[0]: None}, plays)
    with pytest.raises(mushra.FlowError, match="do not belong"):
        mushra.submit_trial(engine, token, "test", 0, {**ratings, "forged-id": 3}, plays)
    assert count(engine, MushraTrial, MushraTrial.phase == "test") == 0
    assert mushra.current_page(engine, token) == page


def test_commit_on_next_is_atomic(engine, launched, monkeypatch):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))

    def crash(*args):
        raise RuntimeError("power cut")

    monkeypatch.setattr(listener, "_move_on", crash)  # after the trial and ratings were inserted
    with pytest.raises(RuntimeError):
        finish(engine, token, page)
    assert count(engine, MushraTrial, MushraTrial.phase == "test") == 0 and count(engine, MushraRating) == 0
    monkeypatch.undo()
    assert mushra.current_page(engine, token) == page
    assert finish(engine, token, page).trial.position == 1 and count(engine, MushraRating) == 5


def test_a_double_submit_commits_once(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    outcomes = []

    def submit():
        try:
            outcomes.append(finish(engine, token, page).trial.position)
        except mushra.FlowError:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [1, "refused", "refused"]
    assert count(engine, MushraTrial, MushraTrial.phase == "test") == 1 and count(engine, MushraRating) == 5


def test_training_is_kept_without_ratings_and_play_log_names_conditions(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = to_trials(engine, token)
    with pytest.raises(mushra.FlowError, match="not played"):
        mushra.submit_trial(engine, token, "training", 0, {}, [])
    finish(engine, token, page)
    with engine.connect() as connection:
        trial = connection.execute(select(MushraTrial)).one()
    assert trial.phase == "training" and count(engine, MushraRating) == 0
    logged = {play["condition"] for play in trial.play_log["plays"]}
    assert logged == {"reference", "anchor-lp35", "anchor-lp70", "g711-alaw", "noisy"}
    assert trial.client == {"seconds": 12.5} and trial.submitted_at >= trial.started_at


def test_stimulus_audio_serves_only_the_current_page(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = to_trials(engine, token)
    data = mushra.stimulus_audio(engine, token, page.trial.stimuli[0])
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 16000 and len(audio) == 24000
    session = session_row(engine, token)
    later = trial_ids(session.secret, "test", 3, session.plan["test"][3]["sliders"])[1][0]
    with pytest.raises(mushra.FlowError, match="unknown stimulus"):
        mushra.stimulus_audio(engine, token, later)
    with pytest.raises(mushra.FlowError, match="not valid"):
        mushra.stimulus_audio(engine, "stolen-" + token, page.trial.stimuli[0])


def test_no_stimulus_stands_out_by_size_or_by_its_bytes(engine, launched):
    """The labelled reference and the hidden reference carry the same audio in different bytes,
    and every stimulus of a trial (anchors, which FLAC compresses better, included) has one size."""
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    session = session_row(engine, token)
    trial = session.plan["test"][page.trial.position]
    _, ids = trial_ids(session.secret, "test", page.trial.position, trial["sliders"])
    hidden = ids[trial["sliders"].index(session.plan["reference"])]
    served = {s: mushra.stimulus_audio(engine, token, s) for s in (page.trial.reference, *page.trial.stimuli)}
    assert len({len(data) for data in served.values()}) == 1
    assert len(set(served.values())) == len(served)
    decoded = {s: sf.read(io.BytesIO(data), dtype="int16")[0] for s, data in served.items()}
    assert np.array_equal(decoded[page.trial.reference], decoded[hidden])
    assert served == {s: mushra.stimulus_audio(engine, token, s) for s in served}  # stable across reloads


def test_questionnaire_answers_are_checked(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    while page.phase == "trials":
        page = finish(engine, token, page)
    with pytest.raises(mushra.AnswerError) as info:
        mushra.submit_questionnaire(engine, token, {"phones": "maybe"})
    assert set(info.value.problems) == {"phones"}
    mushra.submit_questionnaire(engine, token, {"phones": "yes"})
    assert session_row(engine, token).answers == {"phones": "yes"}


# -- links, balance and progress --------------------------------------------------------


def test_links_only_hashes_are_stored_and_status_is_enforced(engine, sources, cache, tmp_path):
    mushra.create_test(engine, make_spec(sources), stimulus_root=tmp_path / "s", cache_root=cache)
    invites = mushra.invite(engine, "listening", 3, base_url="https://x.example/listen")
    assert len({i.token for i in invites}) == 3 and invites[0].url.endswith(f"?t={invites[0].token}")
    with engine.connect() as connection:
        stored = connection.execute(select(MushraParticipant.token_hash)).scalars().all()
    assert not {i.token for i in invites} & set(stored) and len(stored) == 3
    with pytest.raises(mushra.FlowError, match="not started"):
        mushra.enter(engine, invites[0].token)
    info = mushra.launch_test(engine, "listening")
    assert mushra.enter(engine, invites[0].token).phase == "consent"
    opened = mushra.join_open_link(engine, info.open_token)
    assert mushra.enter(engine, opened).participant.startswith("P-")
    mushra.close_test(engine, "listening")
    with pytest.raises(mushra.FlowError, match="closed"):
        mushra.accept_consent(engine, invites[0].token)
    with pytest.raises(ConfigError, match="not open"):
        mushra.join_open_link(engine, info.open_token)


def test_listeners_get_successive_ordinals_and_balanced_first_items(engine, launched):
    tokens = [i.token for i in mushra.invite(engine, "listening", 5)]
    firsts = []
    for token in tokens:
        mushra.enter(engine, token)
        firsts.append(session_row(engine, token).plan["test"][0]["item"])
    with engine.connect() as connection:
        ordinals = connection.execute(select(MushraSession.ordinal)).scalars().all()
    assert sorted(ordinals) == [0, 1, 2, 3, 4] and len(set(firsts)) == 5
    progress = mushra.progress(engine, "listening")
    assert len(progress) == 5 and set(progress["phase"]) == {"consent"} and (progress["trials_total"] == 5).all()


@pytest.mark.slow
def test_demo_test_end_to_end(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'evalkit.db'}")
    root = Path(__file__).resolve().parent.parent
    info = mushra.create_test(engine, root / "tests_mushra" / "demo.yaml", stimulus_root=tmp_path / "stimuli",
                              cache_root=tmp_path / "cache")
    assert info.items == 6 and len(info.conditions) == 8 and info.warnings
    info = mushra.launch_test(engine, "demo")
    token = mushra.join_open_link(engine, info.open_token)
    pages = [to_trials(engine, token)]
    audio = []
    while pages[-1].trial:
        audio += [mushra.stimulus_audio(engine, token, s) for s in pages[-1].trial.stimuli]
        pages.append(finish(engine, token, pages[-1]))
    pages.append(mushra.submit_questionnaire(engine, token, {"headphones": "in-ear", "experience": "no"}))
    assert pages[-1].completion_code and len(mushra.ratings_frame(engine, "demo")) == 6 * 8
    shown = repr([list(values(asdict(page))) for page in pages])
    for name in [*info.conditions[1:], "opus", "amr", "codec2", "g722", "asterisk", "allison"]:
        assert name not in shown and all(name.encode() not in data for data in audio), name
    engine.dispose()
