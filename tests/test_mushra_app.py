"""The MUSHRA pages under Streamlit's AppTest: the listener at every phase, and the admin behind its password.

A tiny test (two 1.5 s generated items; a codec card, a pre-rendered condition, the hidden
reference and both anchors) lives in a temporary SQLite database ($EVALKIT_DB_URL). The trial
player's browser side cannot run here, so its "Next" is simulated by sending the component's
trigger, exactly as the browser would (tests/test_mushra_browser.py drives the real thing).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.testing.v1 import AppTest

from evalkit import mushra
from evalkit.errors import ConfigError
from evalkit.mushra.spec import spec_from_dict
from evalkit.mushra.tokens import token_hash
from evalkit.store import connect
from evalkit.store.models_mushra import MushraEvent, MushraParticipant, MushraSession, MushraTrial

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app" / "streamlit_app.py"
ITEMS = ("clip-kilo", "clip-lima")
PRERENDERED = "hiss-prerender"
PASSWORD = "correct horse battery"
TIMEOUT = 60


def write_sources(folder: Path, items=ITEMS, seconds: float = 1.5) -> None:
    """Modulated tones in noise (16 kHz) and a noisier pre-rendered copy of each."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * 16000)) / 16000
    for k, name in enumerate(items):
        x = 0.1 * np.sin(2 * np.pi * (180 + 40 * k) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        x += 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"{name}.wav", x, 16000, subtype="PCM_16")
        sf.write(folder / f"{name}-hiss.wav", x + 0.02 * rng.standard_normal(len(t)), 16000, subtype="PCM_16")


def tiny_definition(folder: Path, name: str = "tiny") -> dict:
    return {"name": name, "title": "A tiny listening test", "sample_rate": 16000, "open_link": True,
            "items": [{"id": item, "path": str(folder / f"{item}.wav")} for item in ITEMS],
            "conditions": ["g711-alaw", {"name": PRERENDERED, "files": str(folder / "{item}-hiss.wav")}],
            "randomization": {"seed": 11},
            "questionnaire": [{"id": "phones", "text": "Headphones?", "type": "choice", "choices": ["yes", "no"]}]}


def make_tiny_test(folder: Path, url: str) -> SimpleNamespace:
    """Create and launch the tiny test in the database at `url`; everything a test needs to know."""
    write_sources(folder)
    engine = connect(url)
    spec = spec_from_dict(tiny_definition(folder), base=folder, source="tiny.yaml")
    mushra.create_test(engine, spec, stimulus_root=folder / "stimuli", cache_root=folder / "cache")
    info = mushra.launch_test(engine, spec.name)
    names = list(info.conditions) + list(ITEMS) + [f"{item}.wav" for item in ITEMS] + [f"{i}-hiss.wav" for i in ITEMS]
    names += [Path(info.stimulus_dir).name, "anchor", "g711", "alaw", "hiss"]
    return SimpleNamespace(engine=engine, url=url, name=spec.name, info=info, folder=folder, secret_names=names)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mushra_app")
    url = f"sqlite:///{folder / 'evalkit.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALKIT_DB_URL", url)
        patch.setenv("EVALKIT_ADMIN_PASSWORD_HASH", mushra.hash_password(PASSWORD))
        patch.chdir(folder)  # anything the app writes under results/ lands here
        yield make_tiny_test(folder, url)


# -- helpers -------------------------------------------------------------------------------------


def page(script: str, **query) -> AppTest:
    """An AppTest on one of the app's pages, with the given query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(script)
    at.query_params.update(query)
    return at.run()


def listener(**query) -> AppTest:
    return page("views/mushra_listen.py", **query)


def texts(at: AppTest) -> str:
    return " ".join(str(node.value) for kind in ("title", "subheader", "markdown", "caption", "warning", "error",
                                                  "info", "success", "code") for node in at.get(kind))


def player(at: AppTest):
    found = at.get("bidi_component")
    assert len(found) == 1, texts(at)
    return found[0]


def player_data(at: AppTest) -> dict:
    return json.loads(player(at).proto.json)


def send(at: AppTest, event: str, value) -> AppTest:
    """What the browser does on Next / confirm: set the component's trigger, rerun the script."""
    # AppTest has no interaction for components; this mirrors the frontend's trigger message.
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = _make_trigger_id(player(at).proto.id, "events")
    state.json_trigger_value = json.dumps([{"event": event, "value": value}])
    return at._run(states)


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def answers_for(data: dict, scores=None) -> dict:
    """A complete page: every stimulus (and the reference) played, every slider rated."""
    ids = [s["id"] for s in data["stimuli"]]
    heard = [data["ref"]["id"], *ids]
    plays = [{"stimulus": i, "start": 0.0, "end": 1.0, "at": 100.0 * k} for k, i in enumerate(heard)]
    ratings = dict(zip(ids, scores or [10 * (k + 1) for k in range(len(ids))])) if data["rate"] else {}
    return {"ratings": ratings, "plays": plays, "client": {"ms_on_page": 1234}}


def to_level_check(at: AppTest) -> AppTest:
    click(at, "I agree, continue")
    return click(at, "Start")


def new_token(tiny) -> str:
    return mushra.invite(tiny.engine, tiny.name)[0].token


# -- listener ------------------------------------------------------------------------------------


def test_without_a_link_the_listener_page_explains(tiny):
    at = listener()
    assert not at.exception
    assert "Open the link you were given" in texts(at)


def test_a_bad_link_is_refused_with_a_message(tiny):
    at = listener(t="not-a-token")
    assert "not valid" in at.error[0].value


def test_open_link_becomes_a_personal_link_on_the_consent_page(tiny):
    at = listener(open=tiny.info.open_token)
    assert "open" not in at.query_params and len(at.query_params["t"]) > 20
    assert at.title[0].value == "A tiny listening test"
    assert "Before you start" in texts(at) and at.button[0].label == "I agree, continue"
    personal = at.query_params["t"]
    at.query_params = {"open": tiny.info.open_token}  # Back to the open link, same browser session
    assert at.run().query_params["t"] == personal


def test_consent_instructions_and_level_check(tiny):
    at = listener(t=new_token(tiny))
    click(at, "I agree, continue")
    assert "How the test works" in texts(at) and "Keys:" in texts(at)
    click(at, "Start")
    data = player_data(at)
    assert data["mode"] == "level" and set(data) == {"mode", "sampleRate", "mime", "ref"}
    assert base64.b64decode(data["ref"]["audio"])[:4] == b"fLaC"
    send(at, "confirm", {"seconds_heard": 2.5})
    assert "Training 1 of 1" in texts(at)


def test_a_listener_goes_through_training_trials_questionnaire_and_gets_a_code(tiny):
    token = new_token(tiny)
    at = to_level_check(listener(t=token))
    send(at, "confirm", {"seconds_heard": 1.0})
    training = player_data(at)
    assert training["mode"] == "trial" and not training["rate"] and len(training["stimuli"]) == 5
    send(at, "submit", answers_for(training))
    scores = {}
    for position in range(2):
        assert at.get("progress")[0].proto.text == f"Page {position + 1} of 2"
        data = player_data(at)
        assert data["rate"] and len(data["stimuli"]) == 5
        values = [float(7 * k + 3 * position) for k in range(5)]
        scores.update({(position, s["id"]): v for s, v in zip(data["stimuli"], values)})
        send(at, "submit", answers_for(data, values))
    assert "A few questions" in texts(at)
    at.button[0].click().run()  # Finish without the required answer
    assert "Headphones?" in at.error[0].value and "A few questions" in texts(at)
    at.radio[0].set_value("yes")
    at.button[0].click().run()
    assert "Thank you" in at.success[0].value and len(at.code[0].value) == 13
    frame = mushra.ratings_frame(tiny.engine, tiny.name)
    mine = frame[frame["participant"] == mushra.current_page(tiny.engine, token).participant]
    assert len(mine) == 10 and sorted(mine["score"]) == sorted(scores.values())


def test_the_trial_payload_holds_opaque_ids_and_audio_only(tiny):
    token = new_token(tiny)
    at = to_level_check(listener(t=token))
    send(at, "confirm", {})
    data = player_data(at)
    page_now = mushra.current_page(tiny.engine, token)
    assert data["ref"]["id"] == page_now.trial.reference
    assert [s["id"] for s in data["stimuli"]] == list(page_now.trial.stimuli)
    raw = player(at).proto.json
    for name in tiny.secret_names + ["reference"]:
        assert name not in raw, name
    audio = base64.b64decode(data["stimuli"][0]["audio"])
    assert audio == mushra.stimulus_audio(tiny.engine, token, data["stimuli"][0]["id"])


def test_a_closed_tab_resumes_on_the_same_trial(tiny):
    token = new_token(tiny)
    first = to_level_check(listener(t=token))
    send(first, "confirm", {})
    send(first, "submit", answers_for(player_data(first)))
    before = player_data(first)
    again = listener(t=token)  # a new browser session: the tab was closed and the link opened again
    after = player_data(again)
    assert after["ref"]["id"] == before["ref"]["id"] and after["stimuli"] == before["stimuli"]


def test_a_stale_tab_shows_the_current_page_and_stores_nothing_twice(tiny):
    token = new_token(tiny)
    old = to_level_check(listener(t=token))
    send(old, "confirm", {})
    training = player_data(old)
    other = listener(t=token)
    send(other, "submit", answers_for(player_data(other)))  # the other tab moved on
    send(old, "submit", answers_for(training))
    assert player_data(old)["rate"] and not old.warning  # now on the first test page
    with tiny.engine.connect() as connection:
        trials = connection.execute(select(func.count()).select_from(MushraTrial).join(MushraSession).join(
            MushraParticipant).where(MushraParticipant.token_hash == token_hash(token))).scalar_one()
    assert trials == 1


def test_an_unfinished_page_is_refused_by_the_server(tiny):
    token = new_token(tiny)
    at = to_level_check(listener(t=token))
    send(at, "confirm", {})
    send(at, "submit", answers_for(player_data(at)))
    data = player_data(at)
    sent = answers_for(data)
    sent["ratings"].pop(data["stimuli"][0]["id"])
    send(at, "submit", sent)
    assert "not finished" in at.warning[0].value and player_data(at)["ref"] == data["ref"]


# -- admin ---------------------------------------------------------------------------------------


def admin() -> AppTest:
    return page("views/mushra_admin.py")


def sign_in(password: str) -> AppTest:
    at = admin()
    at.text_input[0].input(password)
    return at.button[0].click().run()


def test_admin_refuses_a_wrong_password(tiny):
    at = sign_in("wrong password!")
    assert at.error[0].value == "Wrong password." and not at.tabs


def test_admin_without_a_configured_hash_stays_closed(tiny, monkeypatch):
    monkeypatch.delenv("EVALKIT_ADMIN_PASSWORD_HASH")
    at = sign_in(PASSWORD)
    assert "EVALKIT_ADMIN_PASSWORD_HASH" in at.error[0].value and not at.tabs


def test_admin_signs_in_and_sees_the_test(tiny):
    at = sign_in(PASSWORD)
    assert [tab.label for tab in at.tabs] == ["Create", "Run", "Results"]
    assert at.sidebar.selectbox[0].value == tiny.name
    assert any(m.label == "Participants" for m in at.metric)
    assert f"?open={tiny.info.open_token}" in texts(at)


def test_admin_creates_launches_invites_and_closes_a_test(tiny):
    at = sign_in(PASSWORD)
    at.radio[0].set_value("Upload a YAML file").run()
    definition = tiny_definition(tiny.folder, name="tiny-upload")
    at.get("file_uploader")[0].upload("tiny-upload.yaml", json.dumps(definition).encode(), "application/x-yaml").run()
    assert "A tiny listening test" in texts(at)
    click(at, "Create test")
    assert "Created 'tiny-upload'" in at.success[0].value
    assert at.sidebar.selectbox[0].value == "tiny-upload"
    click(at, "Launch")
    assert "status **open**" in texts(at)
    at.number_input[0].set_value(2).run()
    click(at, "Make invite links")
    links = at.dataframe[0].value
    assert len(links) == 2 and all("/mushra_listen?t=" in link for link in links["link"])
    assert mushra.progress_summary(tiny.engine, "tiny-upload")["participants"] == 2
    at.checkbox[-1].check().run()
    click(at, "Close test")
    assert mushra.test_info(tiny.engine, "tiny-upload").status == "closed"


def complete_listener(tiny, scores) -> None:
    """One listener through the whole test, by the library (as the browser would)."""
    token = new_token(tiny)
    mushra.enter(tiny.engine, token)
    for step in (mushra.accept_consent, mushra.finish_instructions, mushra.confirm_level):
        current = step(tiny.engine, token)
    while current.trial is not None:
        trial = current.trial
        plays = [{"stimulus": s, "start": 0.0, "end": 1.0} for s in trial.stimuli]
        ratings = {s: scores(s, trial) for s in trial.stimuli} if trial.requires_ratings else {}
        current = mushra.submit_trial(tiny.engine, token, trial.phase, trial.position, ratings, plays)
    mushra.submit_questionnaire(tiny.engine, token, {"phones": "no"})


def test_admin_exports_and_analyses_ratings(tiny):
    rng = np.random.default_rng(0)
    for _ in range(3):
        # all high: the hidden reference passes screening and the mid-anchor rule skips every item
        complete_listener(tiny, lambda s, t: float(rng.integers(91, 101)))
    at = sign_in(PASSWORD)
    at.sidebar.selectbox[0].select(tiny.name).run()
    assert not at.exception
    assert any(b.label == "Export ratings (CSV)" for b in at.get("download_button"))
    shown = texts(at)
    for heading in ("Post-screening", "Per condition", "Paired comparisons", "Permutation test",
                    "Repeated-measures ANOVA"):
        assert heading in shown, heading
    assert len(at.get("image")) == 2  # boxplot and mean ± CI
    assert len(at.dataframe) >= 4


def test_a_player_error_is_logged_and_the_page_stays(tiny):
    token = new_token(tiny)
    at = to_level_check(listener(t=token))
    send(at, "error", {"message": "decodeAudioData failed"})
    assert player_data(at)["mode"] == "level" and not at.exception
    with tiny.engine.connect() as connection:
        kinds = connection.execute(select(MushraEvent.kind, MushraEvent.payload)).all()
    assert ("client_error", {"message": "decodeAudioData failed"}) in [tuple(k) for k in kinds]


# -- the demo test -------------------------------------------------------------------------------


def test_the_demo_test_is_made_ready_once(tiny, tmp_path):
    from evalkit.mushra.demo import ensure_demo_test

    spec = tmp_path / "demo-like.yaml"
    spec.write_text(json.dumps(tiny_definition(tiny.folder, name="demo-like")))
    engine = connect(f"sqlite:///{tmp_path / 'demo.db'}")
    first = ensure_demo_test(engine, spec, tmp_path / "stimuli", tmp_path / "cache")
    again = ensure_demo_test(engine, spec, tmp_path / "stimuli", tmp_path / "cache")
    assert first == again and first.admin_path == "/mushra_admin"
    assert first.listener_path == f"/mushra_listen?open={mushra.test_info(engine, 'demo-like').open_token}"
    mushra.close_test(engine, "demo-like")
    with pytest.raises(ConfigError, match="closed"):
        ensure_demo_test(engine, spec, tmp_path / "stimuli", tmp_path / "cache")
