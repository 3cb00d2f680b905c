"""MUSHRA storage, admin and listener flow on SQLite and, with $EVALKIT_TEST_PG_URL, PostgreSQL."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from listening_helpers import without_server_random
from sqlalchemy import func, select

from evalkit import mushra
from evalkit.errors import ConfigError
from evalkit.mushra import listener
from evalkit.mushra.spec import spec_from_dict
from evalkit.mushra.tokens import audio_grant, trial_ids
from evalkit.store import connect
from evalkit.store.models import utcnow
from evalkit.store.models_mushra import (
    MushraCondition,
    MushraEvent,
    MushraParticipant,
    MushraResponse,
    MushraSession,
    MushraStimulus,
    MushraTrial,
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
    data = {
        "name": "listening",
        "title": "A listening test",
        "items": [{"id": i, "path": f"{i}.wav"} for i in ITEMS],
        "conditions": ["g711-alaw", {"name": "noisy", "files": "{item}-noisy.wav"}],
        "sample_rate": 16000,
        "randomization": {"seed": 7},
        "open_link": True,
        "questionnaire": [{"id": "phones", "text": "Headphones?", "type": "choice", "choices": ["yes", "no"]}],
    }
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


def play_all(engine, token, trial, start=None, seconds=1.2, ids=None):
    """Play every stimulus of the page (the reference first) for `seconds` each, by the server's clock;
    returns the time of the stop after the last one."""
    at = start or utcnow()
    for stimulus in ids or (trial.reference, *trial.stimuli):
        mushra.record_play(engine, token, trial.phase, trial.position, stimulus, 0.0, None, at)
        at += timedelta(seconds=seconds)
    mushra.record_play(engine, token, trial.phase, trial.position, None, 0.0, None, at)
    return at


def finish(engine, token, page, scores=None):
    trial = page.trial
    end = play_all(engine, token, trial)
    ratings = scores or {s: float(10 * k) for k, s in enumerate(trial.stimuli)}
    return mushra.submit_trial(engine, token, trial.phase, trial.position, ratings, {"seconds": 12.5}, now=end)


def by_condition(engine, token, trial, score):
    """Scores for a trial page given per condition id (as the server maps the page's opaque ids)."""
    session = session_row(engine, token)
    sliders = session.plan["test"][trial.position]["conditions"]
    return dict(zip(trial_ids(session.secret, "test", trial.position, sliders)[1], map(score, sliders)))


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
        return connection.execute(
            select(MushraSession).join(MushraParticipant).where(MushraParticipant.token_hash == token_hash(token))
        ).one()


# -- creating a test -------------------------------------------------------------------


def test_created_test_stores_levelled_matching_stimuli(engine, launched):
    assert launched.status == "open" and launched.items == 5 and launched.open_token
    assert launched.conditions == ("reference", "anchor-lp35", "anchor-lp70", "g711-alaw", "noisy")
    with engine.connect() as connection:
        rows = pd.DataFrame(
            connection.execute(select(MushraStimulus, MushraCondition.key).join(MushraCondition)).mappings().all()
        )
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
        assert rate == 16000 and data[:4] == b"RIFF" and len(audio) == row.frames


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
    assert len(frame) == 25 and count(engine, MushraResponse) == 25  # training ratings were not stored
    session = session_row(engine, token)
    with engine.connect() as connection:
        keys = dict(connection.execute(select(MushraCondition.id, MushraCondition.key)).all())
    for position, scores in submitted:  # every rating lands on the condition behind its opaque id
        trial = session.plan["test"][position]
        _, ids = trial_ids(session.secret, "test", position, trial["conditions"])
        got = frame[frame["trial"] == position].set_index("condition")["score"]
        assert {keys[c]: scores[i] for c, i in zip(trial["conditions"], ids)} == got.to_dict()
    back = pd.read_csv(io.StringIO(mushra.export_ratings_csv(engine, "listening")))
    assert list(back.columns) == list(frame.columns) and back["score"].tolist() == frame["score"].tolist()
    assert mushra.progress_summary(engine, "listening")["completed"] == 1


def test_nothing_the_browser_gets_names_a_condition_item_or_file(engine, launched, sources):
    token = mushra.join_open_link(engine, launched.open_token)
    seen = [mushra.enter(engine, token)]
    seen += [mushra.accept_consent(engine, token), mushra.finish_instructions(engine, token)]
    audio = [mushra.stimulus_audio(engine, seen[-1].level_audio)]
    seen.append(mushra.confirm_level(engine, token))
    while seen[-1].trial:
        audio += [mushra.stimulus_audio(engine, grant) for grant in seen[-1].trial.audio]
        seen.append(finish(engine, token, seen[-1]))
    seen.append(mushra.submit_questionnaire(engine, token, {"phones": "no"}))
    text_seen = without_server_random([repr([list(values(asdict(page))) for page in seen])])[0]  # grants, times
    # "reference" is left out: the labelled reference button is public (and named in the instructions).
    secrets = [
        *launched.conditions[1:],
        "g711",
        "alaw",
        "anchor",
        "lp35",
        "lp70",
        *ITEMS,
        str(sources),
        launched.stimulus_dir,
        ".wav",
        ".flac",
    ]
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
    assert count(engine, MushraResponse) == 5


def test_next_is_refused_until_all_played_and_rated_and_nothing_is_written(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    trial = page.trial
    end = play_all(engine, token, trial, ids=trial.stimuli[:-1])
    ratings = {s: 50 for s in trial.stimuli}
    with pytest.raises(mushra.FlowError, match=f"sample {len(trial.stimuli)} not played"):
        mushra.submit_trial(engine, token, "test", 0, ratings, now=end)
    end = play_all(engine, token, trial, end, seconds=0.6, ids=trial.stimuli[-1:])
    with pytest.raises(mushra.FlowError, match=f"sample {len(trial.stimuli)} played 0.6 s of 1.0 s"):
        mushra.submit_trial(engine, token, "test", 0, ratings, now=end)
    end = play_all(engine, token, trial, end, seconds=0.5, ids=trial.stimuli[-1:])  # plays add up
    with pytest.raises(mushra.FlowError, match="sample 1 not rated"):
        mushra.submit_trial(engine, token, "test", 0, {**ratings, trial.stimuli[0]: None}, now=end)
    with pytest.raises(mushra.FlowError, match="do not belong"):
        mushra.submit_trial(engine, token, "test", 0, {**ratings, "forged-id": 3}, now=end)
    assert count(engine, MushraTrial, MushraTrial.phase == "test") == 0
    assert mushra.current_page(engine, token) == page
    assert mushra.submit_trial(engine, token, "test", 0, ratings, now=end).trial.position == 1


def test_plays_are_timed_by_the_server_and_survive_a_reload(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    trial = to_trials(engine, token).trial
    start = utcnow()
    mushra.record_play(engine, token, "training", 0, trial.stimuli[0], 0.0, None, start)
    heard = mushra.record_play(
        engine, token, "training", 0, trial.stimuli[1], 0.3, [0.2, 0.9], start + timedelta(seconds=2)
    )
    assert heard == {trial.stimuli[0]: (pytest.approx(2.0), 1.0), trial.stimuli[1]: (0.0, pytest.approx(0.7))}
    again = mushra.enter(engine, token, now=start + timedelta(seconds=2.5))  # a reload: the open play goes on
    assert dict((s, (h, n)) for s, h, n in again.trial.heard) == {
        trial.stimuli[0]: (pytest.approx(2.0), 1.0),
        trial.stimuli[1]: (pytest.approx(0.5), pytest.approx(0.7)),
    }
    with pytest.raises(mushra.FlowError, match="out of date"):
        mushra.record_play(engine, token, "test", 0, trial.stimuli[0])
    with pytest.raises(mushra.FlowError, match="does not belong"):
        mushra.record_play(engine, token, "training", 0, "someone-elses-id")
    with pytest.raises(mushra.FlowError, match="does not fit"):
        mushra.record_play(engine, token, "training", 0, trial.stimuli[0], 0.0, [0.0, 9.0])
    with pytest.raises(mushra.FlowError, match="play offset"):
        mushra.record_play(engine, token, "training", 0, trial.stimuli[0], -2.0)


def test_limits_refuse_floods_and_store_nothing_of_them(engine, launched, monkeypatch):
    token = mushra.invite(engine, "listening")[0].token
    trial = to_trials(engine, token).trial
    monkeypatch.setattr(listener, "MAX_PLAY_EVENTS", 5)
    for _ in range(5):
        mushra.record_play(engine, token, "training", 0, trial.stimuli[0])
    with pytest.raises(mushra.LimitError, match="5 plays on one page is the limit"):
        mushra.record_play(engine, token, "training", 0, trial.stimuli[1])
    with pytest.raises(mushra.LimitError, match="too large"):
        mushra.submit_trial(engine, token, "training", 0, {}, {"events": ["x" * 100] * 100})
    with pytest.raises(mushra.LimitError, match="too large"):
        mushra.log_event(engine, token, "error", {"message": "x" * 90_000})
    monkeypatch.setattr(listener, "MAX_CLIENT_EVENTS", 3)
    for _ in range(3):
        mushra.log_event(engine, token, "error", {"message": "decode failed"})
    with pytest.raises(mushra.LimitError, match="3 events"):
        mushra.log_event(engine, token, "error", {"message": "once more"})
    with pytest.raises(mushra.FlowError, match="event kind"):
        mushra.log_event(engine, token, "x" * 100)
    assert count(engine, MushraEvent, MushraEvent.kind == "client_error") == 3


def test_commit_on_next_is_atomic(engine, launched, monkeypatch):
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))

    def crash(*args):
        raise RuntimeError("power cut")

    monkeypatch.setattr(listener, "_move_on", crash)  # after the trial and ratings were inserted
    with pytest.raises(RuntimeError):
        finish(engine, token, page)
    assert count(engine, MushraTrial, MushraTrial.phase == "test") == 0 and count(engine, MushraResponse) == 0
    monkeypatch.undo()
    assert mushra.current_page(engine, token) == page
    assert finish(engine, token, page).trial.position == 1 and count(engine, MushraResponse) == 5


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
    assert count(engine, MushraTrial, MushraTrial.phase == "test") == 1 and count(engine, MushraResponse) == 5


def test_training_is_kept_without_ratings_and_play_log_names_conditions(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = to_trials(engine, token)
    with pytest.raises(mushra.FlowError, match="not played"):
        mushra.submit_trial(engine, token, "training", 0, {})
    finish(engine, token, page)
    with engine.connect() as connection:
        trial = connection.execute(select(MushraTrial)).one()
    assert trial.phase == "training" and count(engine, MushraResponse) == 0
    plays = trial.play_log["plays"]
    assert {play["condition"] for play in plays} == {
        "reference",
        "anchor-lp35",
        "anchor-lp70",
        "g711-alaw",
        "noisy",
        None,
    }
    assert plays[0]["reference_button"] and not any(play["reference_button"] for play in plays[1:])
    assert [play["seconds"] for play in plays] == pytest.approx([1.2] * 6 + [0.0])  # the last is the stop
    assert all(b["at"] - a["at"] == pytest.approx(1.2) for a, b in zip(plays, plays[1:]))
    assert trial.client == {"seconds": 12.5} and trial.submitted_at >= trial.started_at
    assert count(engine, listener.MushraPlay) == 0  # the page's pending plays went into the trial


def test_audio_grants_open_one_stimulus_of_the_current_page_until_they_expire(engine, launched):
    token = mushra.invite(engine, "listening")[0].token
    page = to_trials(engine, token)
    data = mushra.stimulus_audio(engine, page.trial.audio[1])
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 16000 and len(audio) == 24000
    session = session_row(engine, token)
    code, later = page.participant, trial_ids(session.secret, "test", 3, session.plan["test"][3]["conditions"])[1][0]
    expires = int(utcnow().timestamp()) + 600
    with pytest.raises(mushra.FlowError, match="another page"):
        mushra.stimulus_audio(engine, audio_grant(session.secret, code, later, expires))
    with pytest.raises(mushra.AccessError, match="expired"):
        mushra.stimulus_audio(engine, page.trial.audio[1], now=utcnow() + timedelta(hours=3))
    forged = page.trial.audio[1].split(".")
    for bad in (
        ".".join([*forged[:2], str(int(forged[2]) + 3600), forged[3]]),  # a later expiry
        ".".join([forged[0], page.trial.stimuli[2], *forged[2:]]),  # another stimulus
        audio_grant("00" * 32, code, page.trial.stimuli[0], expires),
        "P-1.x",
        "garbage",
    ):
        with pytest.raises(mushra.AccessError):
            mushra.stimulus_audio(engine, bad)
    mushra.close_test(engine, "listening")
    with pytest.raises(mushra.FlowError, match="closed"):
        mushra.stimulus_audio(engine, page.trial.audio[1])


def test_no_stimulus_stands_out_by_size_or_by_its_bytes(engine, launched):
    """The labelled reference and the hidden reference carry the same audio in different bytes,
    and every stimulus of a trial (anchors included) has one size and one header."""
    token = mushra.invite(engine, "listening")[0].token
    page = finish(engine, token, to_trials(engine, token))
    session = session_row(engine, token)
    trial = session.plan["test"][page.trial.position]
    _, ids = trial_ids(session.secret, "test", page.trial.position, trial["conditions"])
    hidden = ids[trial["conditions"].index(session.plan["reference"])]
    served = dict(
        zip((page.trial.reference, *page.trial.stimuli), (mushra.stimulus_audio(engine, g) for g in page.trial.audio))
    )
    assert len({len(data) for data in served.values()}) == 1 and len({data[:44] for data in served.values()}) == 1
    assert len(set(served.values())) == len(served)
    decoded = {s: sf.read(io.BytesIO(data), dtype="int32")[0] >> 16 for s, data in served.items()}
    error = decoded[page.trial.reference] - decoded[hidden]  # the same 16-bit audio under two dithers
    assert np.abs(error).max() <= 2 and served[page.trial.reference] != served[hidden]
    assert served == dict(zip(served, (mushra.stimulus_audio(engine, g) for g in page.trial.audio)))  # stable


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


def test_a_test_closed_too_early_can_be_reopened_and_its_listeners_resume(engine, sources, cache, tmp_path):
    mushra.create_test(engine, make_spec(sources), stimulus_root=tmp_path / "s", cache_root=cache)
    (invite,) = mushra.invite(engine, "listening")
    first = mushra.launch_test(engine, "listening")
    with pytest.raises(ConfigError, match="open already; close it first"):
        mushra.launch_test(engine, "listening")
    mushra.enter(engine, invite.token)
    mushra.close_test(engine, "listening")
    with pytest.raises(mushra.FlowError, match="closed"):
        mushra.accept_consent(engine, invite.token)
    again = mushra.launch_test(engine, "listening")
    assert again.status == "open" and again.open_token not in (None, first.open_token)
    assert mushra.accept_consent(engine, invite.token).phase == "instructions"  # where they stood
    with pytest.raises(ConfigError, match="not open"):
        mushra.join_open_link(engine, first.open_token)  # the link given out before the close stays dead


def test_two_operators_launching_at_once_hand_out_one_open_link(engine, sources, cache, tmp_path, monkeypatch):
    """The second launch waits for the first and is refused, instead of replacing the link the first just showed."""
    from evalkit.listening import admin

    mushra.create_test(engine, make_spec(sources), stimulus_root=tmp_path / "s", cache_root=cache)
    first_inside, made, results = threading.Event(), [], {}

    def slow_token():  # the first launch pauses after reading the test's status, while the second one starts
        made.append(admin.secrets.token_urlsafe(32))
        if len(made) == 1:
            first_inside.set()
            time.sleep(0.5)
        return made[-1]

    monkeypatch.setattr(admin, "new_token", slow_token)

    def launch(who):
        try:
            results[who] = mushra.launch_test(engine, "listening").open_token
        except ConfigError as err:
            results[who] = str(err)

    first = threading.Thread(target=launch, args=("first",))
    first.start()
    first_inside.wait(5)
    launch("second")
    first.join()
    assert results["first"] == mushra.test_info(engine, "listening").open_token
    assert "open already" in results["second"]


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
    info = mushra.create_test(
        engine, root / "tests_mushra" / "demo.yaml", stimulus_root=tmp_path / "stimuli", cache_root=tmp_path / "cache"
    )
    assert info.items == 6 and len(info.conditions) == 8 and info.warnings
    info = mushra.launch_test(engine, "demo")
    token = mushra.join_open_link(engine, info.open_token)
    pages = [to_trials(engine, token)]
    audio = []
    while pages[-1].trial:
        audio += [mushra.stimulus_audio(engine, grant) for grant in pages[-1].trial.audio]
        pages.append(finish(engine, token, pages[-1]))
    pages.append(mushra.submit_questionnaire(engine, token, {"headphones": "in-ear", "experience": "no"}))
    assert pages[-1].completion_code and len(mushra.ratings_frame(engine, "demo")) == 6 * 8
    shown = without_server_random([repr([list(values(asdict(page))) for page in pages])])[0]
    for name in [*info.conditions[1:], "opus", "amr", "codec2", "g722", "asterisk", "allison"]:
        assert name not in shown and all(name.encode() not in data for data in audio), name
    engine.dispose()


# -- the admin's sign-in -------------------------------------------------------------------


def test_sign_in_locks_out_guessing_and_says_until_when(engine):
    from evalkit.mushra import auth

    stored, start = auth.hash_password("correct horse", n=2**10), utcnow()
    policy = auth.SigninPolicy(client_failures=3, account_failures=5, window_s=600, lock_s=30)

    def attempt(password, client="10.0.0.1", seconds=0.0):
        return auth.sign_in(
            engine, password, client, configured=stored, policy=policy, now=start + timedelta(seconds=seconds)
        )

    for k in range(2):
        with pytest.raises(auth.SigninError, match="wrong account or password"):
            attempt("guess", seconds=k)
    with pytest.raises(auth.LockedOut, match=r"from this address; try again in 30 s \(at \d\d:\d\d:\d\d UTC\)"):
        attempt("guess", seconds=2)
    with pytest.raises(auth.LockedOut):
        attempt("correct horse", seconds=10)  # the right password waits too: guessing cannot go faster
    with pytest.raises(auth.LockedOut, match="try again in 60 s"):  # one more failure after the lock: doubled
        attempt("guess", seconds=33)
    session = attempt("correct horse", seconds=100)
    assert session.token and session.expires_at == start + timedelta(seconds=100, hours=8)
    for k in range(4):  # guesses from many addresses add up on the account (a success cleared its own)
        with pytest.raises(auth.SigninError, match="wrong account"):
            attempt("guess", client=f"10.0.1.{k}", seconds=110 + k)
    with pytest.raises(auth.LockedOut, match="for this account; try again in 10 min"):
        attempt("guess", client="10.0.1.9", seconds=115)
    with pytest.raises(auth.LockedOut, match="for this account"):
        attempt("correct horse", client="10.0.2.1", seconds=120)
    assert attempt("correct horse", client="10.0.2.1", seconds=800).account == "admin"  # the window has passed


def test_admin_sessions_expire_and_end_at_sign_out(engine, monkeypatch):
    from evalkit.mushra import auth

    stored = auth.hash_password("correct horse", n=2**10)
    monkeypatch.setenv(auth.SESSION_HOURS_VAR, "2")
    session = auth.sign_in(engine, "correct horse", "10.0.0.9", configured=stored)
    assert session.expires_at - utcnow() == pytest.approx(timedelta(hours=2), abs=timedelta(seconds=5))
    assert auth.admin_session(engine, session.token).account == "admin"
    assert auth.admin_session(engine, session.token, now=session.expires_at) is None
    assert auth.admin_session(engine, "forged") is None and auth.admin_session(engine, None) is None
    auth.sign_out(engine, session.token)
    assert auth.admin_session(engine, session.token) is None
    with pytest.raises(auth.SigninError):
        auth.sign_in(engine, "correct horse", "10.0.0.9", account="root", configured=stored)
    monkeypatch.setenv(auth.SESSION_HOURS_VAR, "forever")
    with pytest.raises(ConfigError, match="number of hours"):
        auth.sign_in(engine, "correct horse", "10.0.0.9", configured=stored)


# -- what a test owner reads ---------------------------------------------------------------


def test_answers_trials_and_listener_report(engine, launched):
    from evalkit.mushra.listeners import answers_frame, export_results, listener_report, trials_frame

    invites = mushra.invite(engine, "listening", labels=["ann@example.org", "panel-7"])
    done, halfway = (i.token for i in invites)
    page = to_trials(engine, done)
    while page.trial:
        page = finish(
            engine, done, page, {s: 50.0 for s in page.trial.stimuli} if page.trial.requires_ratings else None
        )
    mushra.submit_questionnaire(engine, done, {"phones": "yes"})
    finish(engine, halfway, finish(engine, halfway, to_trials(engine, halfway)))
    answers = answers_frame(engine, "listening")
    assert list(answers.columns) == ["participant", "label", "source", "completed", "phones"]
    by_label = answers.set_index("label")["phones"]
    assert by_label["ann@example.org"] == "yes" and pd.isna(by_label["panel-7"])
    trials = trials_frame(engine, "listening")
    assert len(trials) == 6 + 2 and set(trials["phase"]) == {"training", "test"}
    assert (trials["plays_per_sample"] == 1).all() and trials["least_heard_s"].tolist() == pytest.approx([1.2] * 8)
    assert (trials["reference_plays"] == 1).all() and (trials["seconds"] >= 0).all()
    report = listener_report(engine, "listening").set_index("label")
    assert report.loc["ann@example.org", "trials_done"] == 5 and report.loc["ann@example.org", "completed"]
    assert report.loc["panel-7", "trials_done"] == 1 and not report.loc["panel-7", "completed"]
    assert report.loc["ann@example.org", "screening"] == "excluded"  # the hidden reference rated 50 everywhere
    assert report.loc["ann@example.org", "screening_reason"] == "hidden reference below 90 on 100% of items"
    import zipfile

    with zipfile.ZipFile(io.BytesIO(export_results(engine, "listening"))) as archive:
        names = sorted(archive.namelist())
        ratings = pd.read_csv(archive.open("listening/ratings.csv"))
    assert names == [f"listening/{n}.csv" for n in ("answers", "listeners", "ratings", "trials")]
    assert len(ratings) == 25  # completed sessions only by default


def test_statistics_take_completed_sessions_and_warn_when_degenerate(engine, launched):
    from evalkit.mushra.checks import degenerate_warnings, statistics_ratings

    tokens = [i.token for i in mushra.invite(engine, "listening", 3)]
    for token in tokens[:2]:  # two listeners who give each condition the very same score
        page = to_trials(engine, token)
        while page.trial:
            page = finish(
                engine,
                token,
                page,
                by_condition(engine, token, page.trial, lambda c: 10.0 * (c % 7))
                if page.trial.requires_ratings
                else None,
            )
        mushra.submit_questionnaire(engine, token, {"phones": "no"})
    finish(engine, tokens[2], finish(engine, tokens[2], to_trials(engine, tokens[2])))
    frame, note = statistics_ratings(engine, "listening")
    assert frame["participant"].nunique() == 2 and note == "2 completed session(s); 1 unfinished left out"
    everyone, note = statistics_ratings(engine, "listening", include_incomplete=True)
    assert everyone["participant"].nunique() == 3 and "1 unfinished" in note
    warnings = degenerate_warnings(frame)
    assert any("identical ratings on every trial" in w for w in warnings)
    assert any(w.startswith("F = ∞ for condition") for w in warnings)  # they agree exactly: no residual
    noisy = frame.assign(score=frame["score"] + np.random.default_rng(0).uniform(0, 3, len(frame)))
    assert degenerate_warnings(noisy) == []
    one = frame[frame["participant"] == frame["participant"].iloc[0]]
    assert any(w.startswith("only 1 listener") for w in degenerate_warnings(one))
    assert degenerate_warnings(frame.iloc[:0]) == []
