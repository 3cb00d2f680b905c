"""The Streamlit app: every page runs under AppTest against a tmp database (EVALKIT_DB_URL), shows its
data or says what is missing; (slow) `evalkit app` serves the app over HTTP."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import evalkit
from evalkit.report import leaderboard, load_run
from evalkit.report.drilldown import NO_EVENTS
from evalkit.report.listening import NO_MUSHRA
from evalkit.report.pareto import NO_PROFILES
from evalkit.report.serve import PAGE_PATHS, app_command
from evalkit.store import connect

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402  (after the skip: Streamlit is an app-only dependency)

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "app" / "streamlit_app.py"
MANIFEST = ROOT / "data" / "demo" / "manifest.jsonl"
RUN = "report-test"  # the same run as test_report.py, in the same tmp database
CODECS = ["reference", "g711-mulaw", {"card": "opus-16k-wb", "sweep": {"bitrate": [8000, 16000]}}]
TIMEOUT = 60


@pytest.fixture(scope="session")
def scored(tmp_path_factory) -> str:
    """A small scored run in a tmp SQLite database (shared with test_report.py: a rerun there is a no-op)."""
    root = tmp_path_factory.getbasetemp() / "evalkit-report"
    url = f"sqlite:///{root / 'results.db'}"
    evalkit.run(
        {
            "name": RUN,
            "dataset": str(MANIFEST),
            "limit": 3,
            "codecs": CODECS,
            "metrics": ["si_sdr", "stoi"],
            "workers": 0,
            "database": url,
            "cache": str(root / "cache"),
        }
    )
    return url


def _signed_in(monkeypatch, url: str) -> None:
    """Every page needs the admin's session: the real sign-in makes one, and `ui` hands its token over as
    the browser's cookie would (AppTest cannot send cookies)."""
    from evalkit.mushra.auth import hash_password, sign_in

    monkeypatch.syspath_prepend(str(ENTRY.parent))
    import ui

    session = sign_in(connect(url), "correct horse", "127.0.0.1", configured=hash_password("correct horse", n=2**10))
    monkeypatch.setattr(ui, "admin_cookie", lambda: session.token)


@pytest.fixture
def app(scored, monkeypatch) -> AppTest:
    monkeypatch.setenv("EVALKIT_DB_URL", scored)
    _signed_in(monkeypatch, scored)
    test = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT)
    test.run()
    assert not test.exception
    return test


def _open(app: AppTest, page: str) -> AppTest:
    app.switch_page(f"views/{page}.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _infos(app: AppTest) -> str:
    return " ".join(element.value for element in app.info)


def test_every_page_is_listed_and_its_url_printed():
    listed = (ROOT / "app" / "streamlit_app.py").read_text()
    for stem in ("leaderboard", *filter(None, PAGE_PATHS.values())):
        assert f'"views/{stem}.py"' in listed and (ENTRY.parent / "views" / f"{stem}.py").is_file()


def test_leaderboard_page_shows_the_library_numbers(app, scored):
    assert app.title[0].value == "Leaderboard"
    assert app.selectbox(key="run").value == RUN
    shown = app.dataframe[0].value
    board = leaderboard(load_run(connect(scored), RUN))
    for row in board.itertuples():
        assert shown.set_index("codec").at[row.codec, row.metric] == row.mean
    assert shown["si_sdr"].is_monotonic_decreasing or shown["stoi"].is_monotonic_decreasing


def test_leaderboard_names_a_codec_missing_some_items(scored, tmp_path, monkeypatch):
    """A run stopped part way: the page says which codec's means cover fewer items."""
    import sqlite3

    from sqlalchemy import text

    copy = tmp_path / "stopped.db"
    with sqlite3.connect(scored.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    item = load_run(connect(url), RUN).results["item_id"].iloc[0]
    with connect(url).begin() as connection:
        connection.execute(text("DELETE FROM results WHERE codec = 'g711-mulaw' AND item_id = :i"), {"i": item})
    monkeypatch.setenv("EVALKIT_DB_URL", url)
    _signed_in(monkeypatch, url)
    test = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT)
    test.run()
    page = _open(test, "leaderboard")
    assert any(f"g711-mulaw has no row for 1 of the run's 3 items ({item})" in w.value for w in page.warning)


def test_leaderboard_filters_by_speaker_and_metric(app, scored):
    run = load_run(connect(scored), RUN)
    speaker = sorted(set(run.speakers[item] for item in run.results["item_id"].unique()))[0]
    app.sidebar.multiselect[1].set_value([speaker]).run()
    app.multiselect[0].set_value(["stoi"]).run()
    shown = app.dataframe[0].value
    assert "stoi" in shown.columns and "si_sdr" not in shown.columns
    assert shown.set_index("codec")["stoi"].to_dict() == pytest.approx(
        leaderboard(run, speakers=[speaker], metrics=["stoi"]).set_index("codec")["mean"].to_dict()
    )


def test_rate_quality_page_plots(app):
    page = _open(app, "rate_quality")
    assert page.title[0].value == "Rate–quality" and page.get("image")
    assert [header.value for header in page.subheader] == ["Quality against bitrate"]  # the run's Opus sweep


def test_quality_cost_page_marks_the_front_and_says_profiles_are_missing(app):
    page = _open(app, "quality_cost")
    assert page.get("image") and not page.dataframe[0].value.empty
    page.get("button_group")[0].set_value("complexity").run()
    assert not page.exception and "evalkit profile --all" in _infos(page) and NO_PROFILES.split(":")[0] in _infos(page)


def test_drilldown_page_plays_reference_and_decoded_audio(app):
    page = _open(app, "drilldown")
    assert len(page.get("audio")) == 2 and page.get("image")
    assert not page.warning  # both files found
    assert NO_EVENTS in _infos(page) or "No hallucination events" in _infos(page)


def test_mushra_page_says_there_is_no_test_yet(app):
    page = _open(app, "mushra_metrics")
    assert NO_MUSHRA in _infos(page)


def test_empty_database_gives_a_hint_on_every_page(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    _signed_in(monkeypatch, f"sqlite:///{tmp_path / 'empty.db'}")
    app = AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT)
    app.run()
    for page in [None, "rate_quality", "quality_cost", "drilldown", "mushra_metrics"]:
        current = _open(app, page) if page else app
        assert "No runs in the database yet" in _infos(current)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_evalkit_app_serves_over_http(scored):
    port = _free_port()
    env = {"EVALKIT_DB_URL": scored, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    server = subprocess.Popen(app_command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as response:
                    assert response.read() == b"ok"
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not answer within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=20)
