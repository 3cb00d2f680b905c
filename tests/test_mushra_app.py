"""The app's MUSHRA admin under Streamlit's AppTest, behind the admin session; the tiny test other files share.

A tiny test (two 1.5 s generated items; a codec card, a pre-rendered condition, the hidden
reference and both anchors) lives in a temporary SQLite database ($EVALKIT_DB_URL). AppTest
cannot send cookies, so the one thing stood in for is the browser's cookie: `ui.admin_cookie`
returns the token of a session made by the real sign-in. Listeners have their own page
(evalkit.mushra.web; tests/test_mushra_web.py and tests/test_mushra_browser.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from evalkit import mushra
from evalkit.errors import ConfigError
from evalkit.mushra.auth import sign_in, sign_out
from evalkit.mushra.spec import spec_from_dict
from evalkit.store import connect

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app" / "streamlit_app.py"
if str(APP.parent) not in sys.path:
    sys.path.insert(0, str(APP.parent))  # the app's pages import `ui` from there; so do these tests
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


def tiny_definition(folder: Path, name: str = "tiny", **changes) -> dict:
    return {
        "name": name,
        "title": "A tiny listening test",
        "sample_rate": 16000,
        "open_link": True,
        "items": [{"id": item, "path": str(folder / f"{item}.wav")} for item in ITEMS],
        "conditions": ["g711-alaw", {"name": PRERENDERED, "files": str(folder / "{item}-hiss.wav")}],
        "randomization": {"seed": 11},
        "questionnaire": [{"id": "phones", "text": "Headphones?", "type": "choice", "choices": ["yes", "no"]}],
        **changes,
    }


def make_tiny_test(folder: Path, url: str, **changes) -> SimpleNamespace:
    """Create and launch the tiny test in the database at `url`; everything a test needs to know."""
    write_sources(folder)
    engine = connect(url)
    spec = spec_from_dict(tiny_definition(folder, **changes), base=folder, source="tiny.yaml")
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


@pytest.fixture
def signed_in(tiny, monkeypatch):
    """The browser sends a live admin session cookie (made by the real sign-in, on the test's database)."""
    import ui

    session = sign_in(tiny.engine, PASSWORD, "127.0.0.1")
    monkeypatch.setattr(ui, "admin_cookie", lambda: session.token)
    return session


def page(script: str | None = None, **query) -> AppTest:
    """An AppTest on one of the app's pages, with the given query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    if script:
        at.switch_page(script)
    at.query_params.update(query)
    return at.run()


def texts(at: AppTest) -> str:
    return " ".join(
        str(node.value)
        for kind in ("title", "subheader", "markdown", "caption", "warning", "error", "info", "success", "code")
        for node in at.get(kind)
    )


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def new_token(tiny) -> str:
    return mushra.invite(tiny.engine, tiny.name)[0].token


def admin() -> AppTest:
    return page("views/mushra_admin.py")


# -- the doors -----------------------------------------------------------------------------------


def test_without_a_session_every_page_only_offers_sign_in(tiny):
    for script in (None, "views/mushra_admin.py", "views/mushra_metrics.py", "views/drilldown.py"):
        at = page(script, t=new_token(tiny))  # a listener's token in the URL opens nothing here
        assert not at.exception and at.title[0].value == "evalkit" and not at.tabs and not at.dataframe
        assert "Sign in as admin" in texts(at) and at.get("link_button")[0].proto.url == "/signin"


def test_an_expired_or_signed_out_session_opens_nothing(tiny, monkeypatch):
    import ui

    session = sign_in(tiny.engine, PASSWORD, "127.0.0.1", hours=1 / 3600)
    monkeypatch.setattr(ui, "admin_cookie", lambda: session.token)
    time.sleep(1.1)
    assert "Sign in as admin" in texts(admin())
    fresh = sign_in(tiny.engine, PASSWORD, "127.0.0.1")
    monkeypatch.setattr(ui, "admin_cookie", lambda: fresh.token)
    assert [tab.label for tab in admin().tabs] == ["Create", "Run", "Results"]
    sign_out(tiny.engine, fresh.token)
    assert "Sign in as admin" in texts(admin())
    again = sign_in(tiny.engine, PASSWORD, "127.0.0.1")
    monkeypatch.setattr(ui, "admin_cookie", lambda: again.token)
    assert "Sign in as admin" in texts(click(admin(), "Sign out"))  # the sidebar's button ends the session
    assert "Sign in as admin" in texts(admin())


def test_no_listener_page_in_the_app():
    listed = APP.read_text()
    assert "mushra_listen" not in listed and not (APP.parent / "views" / "mushra_listen.py").exists()


# -- admin ---------------------------------------------------------------------------------------


def test_admin_signs_in_and_sees_the_test(tiny, signed_in):
    at = admin()
    assert [tab.label for tab in at.tabs] == ["Create", "Run", "Results"]
    assert at.sidebar.selectbox[0].value == tiny.name
    assert any(m.label == "Participants" for m in at.metric)
    assert f"/listen?open={tiny.info.open_token}" in texts(at)
    assert "Signed in as admin until" in " ".join(c.value for c in at.sidebar.caption)


def test_an_upload_naming_audio_outside_the_allowed_folders_is_refused(tiny, signed_in):
    at = admin()
    at.radio[0].set_value("Upload a YAML file").run()
    definition = tiny_definition(tiny.folder, name="tiny-outside")  # its audio lies in a folder of its own
    at.get("file_uploader")[0].upload("outside.yaml", json.dumps(definition).encode(), "application/x-yaml").run()
    assert len(at.error) == 1 and at.error[0].value.startswith("outside.yaml:1: items[0].path: ")
    assert "lies outside the folders an uploaded definition may use" in at.error[0].value
    assert not any(b.label == "Create test" for b in at.button)


def test_admin_creates_launches_invites_with_labels_and_closes_a_test(tiny, signed_in, monkeypatch):
    monkeypatch.setenv("EVALKIT_UPLOAD_ROOTS", str(tiny.folder))  # the operator keeps stimuli there
    at = admin()
    at.radio[0].set_value("Upload a YAML file").run()
    definition = tiny_definition(tiny.folder, name="tiny-upload", title="Upload ![t](http://evil.example/t.png)")
    at.get("file_uploader")[0].upload("tiny-upload.yaml", json.dumps(definition).encode(), "application/x-yaml").run()
    assert "Upload \\!\\[t\\]\\(http://evil.example/t.png\\)" in texts(at)  # shown literally: nothing loads
    click(at, "Create test")
    assert "Created 'tiny-upload'" in at.success[0].value
    assert at.sidebar.selectbox[0].value == "tiny-upload"
    click(at, "Launch")
    assert "status **open**" in texts(at)
    at.number_input[0].set_value(2).run()
    at.text_area[0].input("ann@example.org\npanel-7").run()
    click(at, "Make invite links")
    links = at.dataframe[0].value
    assert list(links.columns) == ["participant", "label", "link"] and list(links["label"]) == [
        "ann@example.org",
        "panel-7",
    ]
    assert all("/listen?t=" in link for link in links["link"])
    progress = mushra.progress(tiny.engine, "tiny-upload")
    assert sorted(progress["label"]) == ["ann@example.org", "panel-7"]
    at.checkbox[-1].check().run()
    click(at, "Close test")
    assert mushra.test_info(tiny.engine, "tiny-upload").status == "closed"
    click(at, "Reopen")  # closed too early: the listeners resume
    assert "status **open**" in texts(at) and mushra.test_info(tiny.engine, "tiny-upload").status == "open"


def complete_listener(tiny, scores, answers=None) -> str:
    """One listener through the whole test, by the library (as the page would), plays timed by the server."""
    from datetime import timedelta

    from evalkit.store.models import utcnow

    token = new_token(tiny)
    mushra.enter(tiny.engine, token)
    for step in (mushra.accept_consent, mushra.finish_instructions, mushra.confirm_level):
        current = step(tiny.engine, token)
    while current.trial is not None:
        trial, at = current.trial, utcnow()
        for stimulus in trial.stimuli:
            mushra.record_play(tiny.engine, token, trial.phase, trial.position, stimulus, 0.0, None, at)
            at += timedelta(seconds=1.1)
        ratings = {s: scores(s, trial) for s in trial.stimuli} if trial.requires_ratings else {}
        current = mushra.submit_trial(tiny.engine, token, trial.phase, trial.position, ratings, now=at)
    mushra.submit_questionnaire(tiny.engine, token, answers or {"phones": "no"})
    return token


def test_admin_analyses_completed_sessions_and_shows_answers_and_listeners(tiny, signed_in):
    rng = np.random.default_rng(0)
    for answer in ("yes", "no", "no"):
        # all high: the hidden reference passes screening and the mid-anchor rule skips every item
        complete_listener(tiny, lambda s, t: float(rng.integers(91, 101)), {"phones": answer})
    halfway = new_token(tiny)
    mushra.enter(tiny.engine, halfway)
    at = admin()
    at.sidebar.selectbox[0].select(tiny.name).run()
    assert not at.exception
    labels = {b.label for b in at.get("download_button")}
    assert {"Export ratings (CSV)", "Export answers (CSV)", "Export everything (ZIP)"} <= labels
    shown = texts(at)
    for heading in (
        "Post-screening",
        "Per condition",
        "Paired comparisons",
        "Permutation test",
        "Repeated-measures ANOVA",
    ):
        assert heading in shown, heading
    assert "3 completed session(s)" in shown
    assert len(at.get("image")) == 2  # boxplot and mean ± CI
    frames = [frame.value for frame in at.dataframe]
    answers = next(f for f in frames if "phones" in f.columns)
    assert sorted(answers["phones"].dropna()) == ["no", "no", "yes"] and len(answers) == 4
    report = next(f for f in frames if "screening" in f.columns)
    assert set(report["screening"]) >= {"kept"} and "plays_per_sample" in report.columns
    at.toggle[0].set_value(True).run()  # include unfinished sessions
    assert "unfinished session(s), all their ratings" in texts(at)


def test_admin_warns_about_degenerate_statistics(tmp_path, monkeypatch):
    """Two listeners with the very same ratings: the ANOVA's F is infinite, and the page says so."""
    folder = tmp_path / "degenerate"
    folder.mkdir()
    url = f"sqlite:///{folder / 'evalkit.db'}"
    monkeypatch.setenv("EVALKIT_DB_URL", url)
    monkeypatch.setenv("EVALKIT_ADMIN_PASSWORD_HASH", mushra.hash_password(PASSWORD))
    twin = make_tiny_test(folder, url, name="twins")
    for _ in range(2):
        complete_listener(twin, lambda s, t: 95.0)
    import ui

    session = sign_in(twin.engine, PASSWORD, "127.0.0.1")
    monkeypatch.setattr(ui, "admin_cookie", lambda: session.token)
    warnings = " ".join(w.value for w in admin().warning)
    assert "Degenerate statistics: listeners" in warnings and "identical ratings" in warnings
    assert "F = ∞" in warnings


# -- the demo test -------------------------------------------------------------------------------


def test_the_demo_test_is_made_ready_once(tiny, tmp_path):
    from evalkit.listening.demo_mushra import ensure_demo_test

    spec = tmp_path / "demo-like.yaml"
    spec.write_text(json.dumps(tiny_definition(tiny.folder, name="demo-like")))
    engine = connect(f"sqlite:///{tmp_path / 'demo.db'}")
    first = ensure_demo_test(engine, spec, tmp_path / "stimuli", tmp_path / "cache")
    again = ensure_demo_test(engine, spec, tmp_path / "stimuli", tmp_path / "cache")
    assert first == again and first.admin_path == "/mushra_admin"
    assert first.listener_path == f"/listen?open={mushra.test_info(engine, 'demo-like').open_token}"
    mushra.close_test(engine, "demo-like")
    with pytest.raises(ConfigError, match="closed"):
        ensure_demo_test(engine, spec, tmp_path / "stimuli", tmp_path / "cache")
