"""End to end in headless Chromium (Playwright): a listener takes the tiny MUSHRA test in the real app.

Starts `streamlit run app/streamlit_app.py` on a free port against a temporary SQLite database,
goes through consent, level check, training and both trials with clicks and key presses,
reloads mid-test and resumes, finishes, then checks every stored rating and that no condition,
item or file name reached the page, the player's state, any HTTP request/response or websocket frame.
Needs Debian's chromium (/usr/bin/chromium) and the playwright package (never `playwright install`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select
from test_mushra_app import APP, make_tiny_test

from evalkit import mushra
from evalkit.mushra.tokens import token_hash
from evalkit.store.models_mushra import MushraParticipant, MushraSession, MushraTrial

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000
SHOTS = Path(os.environ.get("EVALKIT_SCREENSHOTS", Path(__file__).resolve().parent.parent / "results" / "screenshots"))
GENERIC = ("reference", "anchor")  # also words of the UI's own text; checked where a name could leak
PLAYER_JS = (APP.parent / "assets" / "mushra_player.js").read_bytes()
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=_-]{400,}")  # audio payloads: random letters, not names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not come up in {seconds} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    folder = tmp_path_factory.mktemp("mushra_browser")
    tiny = make_tiny_test(folder, f"sqlite:///{folder / 'evalkit.db'}")
    port, log = free_port(), folder / "streamlit.log"
    env = {**os.environ, "EVALKIT_DB_URL": tiny.url, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
               "false", "--server.fileWatcherType", "none"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        tiny.base = f"http://127.0.0.1:{port}"
        wait_healthy(tiny.base, process, log)
        yield tiny
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # our own process group only
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


class Traffic:
    """Everything that crossed the wire: request URLs and bodies, response bodies, websocket frames."""

    def __init__(self, page):
        self.urls, self.bodies, self.frames = [], [], []
        page.on("request", self.request)
        page.on("response", self.response)
        page.on("websocket", lambda ws: (ws.on("framesent", self.frame), ws.on("framereceived", self.frame)))

    def request(self, request):
        self.urls.append(request.url)
        if request.post_data_buffer:
            self.bodies.append((request.url, request.post_data_buffer))

    def response(self, response):
        try:
            self.bodies.append((response.url, response.body()))
        except Exception:  # redirects and aborted loads have no body
            pass

    def frame(self, payload):
        self.frames.append(payload.encode() if isinstance(payload, str) else payload)


# -- the player, seen from the page ---------------------------------------------------------------

STATE_JS = """root => {
  const v = root.__mushra;
  const data = {...v.data, ref: {id: v.data.ref.id}, stimuli: v.data.stimuli.map(s => ({id: s.id}))};
  return {ids: v.ids, plays: v.plays, ratings: v.sliders.map(s => s.value), data: data,
          gains: v.player ? v.player.gains.map(g => g.gain.value) : [], playing: v.player && v.player.playing};
}"""


def state(page) -> dict:
    return page.locator(".mu").evaluate(STATE_JS)


def wait_until(condition, what: str, seconds: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def ready(page, heading: str):
    """Wait for a trial page: its heading shown, the previous player gone (Streamlit keeps a stale
    element until the new run ends) and its audio decoded (the play button enabled)."""
    page.get_by_text(heading).wait_for(timeout=WAIT_MS)
    wait_until(lambda: page.locator(".mu").count() == 1 and page.locator(".mu-board").count() == 1, heading)
    page.locator(".mu-play:not([disabled])").wait_for(timeout=WAIT_MS)
    return state(page)


def rate_by_click(page, index: int, fraction: float) -> None:
    """Click slider `index` at `fraction` of its height from the top."""
    box = page.locator(".mu-track").nth(index).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * fraction)


def next_button(page):
    return page.locator(".mu-next")


def shadow_html(page) -> str:
    return page.evaluate("""() => [...document.querySelectorAll('*')].filter(e => e.shadowRoot)
                                .map(e => e.shadowRoot.innerHTML).join('\\n')""")


def slider_columns_html(page) -> str:
    return page.locator(".mu-col:not(.mu-ref)").evaluate_all("cols => cols.map(c => c.outerHTML).join('')")


# -- the listener's session ----------------------------------------------------------------------


def consent_and_level(page) -> None:
    page.get_by_role("button", name="I agree, continue").click(timeout=WAIT_MS)
    page.get_by_role("button", name="Start").click(timeout=WAIT_MS)
    page.get_by_text("Play the level signal").click(timeout=WAIT_MS)
    page.wait_for_timeout(400)
    page.get_by_text("The level is comfortable").click()


def training_by_keys(page) -> dict:
    seen = ready(page, "Training 1 of 1")
    page.keyboard.press("r")
    for key in "12345":
        page.wait_for_timeout(120)
        page.keyboard.press(key)
    page.wait_for_timeout(120)
    page.keyboard.press("Space")  # pause
    page.locator(".mu-next:not([disabled])").wait_for(timeout=WAIT_MS)  # training needs plays only
    page.keyboard.press("n")
    return seen


def trial_by_clicks(page, shots: Path) -> dict:
    """Trial 1: buttons and slider clicks, a loop region dragged on the waveform."""
    seen = ready(page, "Page 1 of 2")
    page.get_by_role("button", name="Reference").click()
    box = page.locator(".mu-wave-overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + 20, steps=6)
    page.mouse.up()
    buttons = page.locator(".mu-button")
    for index in range(5):
        buttons.nth(index + 1).click()
        page.wait_for_timeout(150)
        if index == 0:
            rate_by_click(page, 1, 0.5)  # another sample's slider: inactive, must stay unrated
            assert state(page)["ratings"][1] is None
            gains = state(page)["gains"]
            assert sorted(gains) == [0] * (len(gains) - 1) + [1], gains  # one signal audible, never a mix
        if index == 4:
            assert next_button(page).is_disabled()  # the last sample is not rated yet
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "mushra_trial_playing.png"), full_page=True)
        rate_by_click(page, index, 0.15 + 0.15 * index)
    next_button(page).wait_for(state="visible")
    page.locator(".mu-next:not([disabled])").wait_for(timeout=WAIT_MS)
    rated = state(page)
    page.screenshot(path=str(shots / "mushra_trial_rated.png"), full_page=True)
    next_button(page).click()
    return {**seen, "ratings": rated["ratings"], "plays": rated["plays"]}


def trial_by_keys(page) -> dict:
    """Trial 2: number keys select, arrows rate (an unrated slider starts at 50), Shift for tens, N next."""
    seen = ready(page, "Page 2 of 2")
    page.keyboard.press("r")
    for index, key in enumerate("12345"):
        page.wait_for_timeout(100)
        page.keyboard.press(key)
        page.keyboard.press("Shift+ArrowUp" if index % 2 else "Shift+ArrowDown")
        page.keyboard.press("ArrowUp")
    page.locator(".mu-next:not([disabled])").wait_for(timeout=WAIT_MS)
    rated = state(page)
    page.keyboard.press("n")
    return {**seen, "ratings": rated["ratings"], "plays": rated["plays"]}


def questionnaire(page) -> str:
    page.get_by_text("A few questions").wait_for(timeout=WAIT_MS)
    page.get_by_text("yes", exact=True).click()
    page.get_by_role("button", name="Finish").click()
    page.get_by_text("Your completion code").wait_for(timeout=WAIT_MS)
    return page.locator("code").last.inner_text().strip()


# -- the test ------------------------------------------------------------------------------------


def test_a_listener_takes_the_test_in_chromium(app):
    started = time.monotonic()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            traffic = Traffic(page)
            page.goto(f"{app.base}/mushra_listen?open={app.info.open_token}")
            consent_and_level(page)
            training = training_by_keys(page)
            first = trial_by_clicks(page, SHOTS)
            partial = ready(page, "Page 2 of 2")
            page.keyboard.press("1")
            page.keyboard.press("ArrowUp")
            page.reload()  # the tab is reloaded mid-trial: the same page comes back, unrated
            resumed = ready(page, "Page 2 of 2")
            assert resumed["ids"] == partial["ids"] and resumed["ratings"] == [None] * 5
            token = dict(re.findall(r"[?&](\w+)=([^&]+)", page.url))["t"]
            pages_html = [page.content()]
            shadows, columns = [shadow_html(page)], [slider_columns_html(page)]
            states = [training, first, partial, resumed]
            second = trial_by_keys(page)
            states.append(second)
            code = questionnaire(page)
            pages_html.append(page.content())
        finally:
            browser.close()
    assert not errors, errors
    check_ratings(app, token, code, [first, second])
    check_plays(app, token, first)
    check_no_names(app, traffic, pages_html, shadows, columns, states)
    assert time.monotonic() - started < 150


def check_ratings(app, token: str, code: str, trials: list[dict]) -> None:
    """Every slider's value as the page showed it is the stored score of that slider, trial by trial."""
    page = mushra.current_page(app.engine, token)
    assert page.phase == "done" and page.completion_code == code
    frame = mushra.ratings_frame(app.engine, app.name)
    mine = frame[frame["participant"] == page.participant].sort_values(["trial", "slider"])
    expected = [score for trial in trials for score in trial["ratings"]]
    assert None not in expected and len(mine) == 10
    assert mine["score"].tolist() == [float(score) for score in expected]
    assert set(mine["condition"]) == set(app.info.conditions)  # every condition rated on every trial
    assert (mine.groupby("trial")["condition"].nunique() == 5).all()


def check_plays(app, token: str, trial: dict) -> None:
    """The stored play log of trial 1: every slider's stimulus and the open reference were heard."""
    with app.engine.connect() as connection:
        log = connection.execute(select(MushraTrial.play_log).join(MushraSession).join(MushraParticipant).where(
            MushraParticipant.token_hash == token_hash(token), MushraTrial.phase == "test",
            MushraTrial.position == 0)).scalar_one()
    heard = {play["condition"] for play in log["plays"]}
    assert heard == set(app.info.conditions)
    assert any(play["reference_button"] for play in log["plays"])
    assert len(log["plays"]) >= len(trial["plays"]) > 5


def shipped_code(url: str, body: bytes) -> bool:
    """Streamlit's bundles and the player's own script (the same for every listener) are code, not data."""
    return "/static/" in url or (url.startswith("blob:") and body.startswith(PLAYER_JS))


def check_no_names(app, traffic: Traffic, pages_html, shadows, columns, states) -> None:
    distinct = [name for name in app.secret_names if name not in GENERIC]
    player_state = json.dumps(states)
    for name in distinct:
        for where, text in [("page", "".join(pages_html)), ("player DOM", "".join(shadows)),
                            ("player state", player_state)]:
            assert name not in text, (name, where)
        assert not any(name in url for url in traffic.urls), name
        assert not any(name.encode() in BASE64_RUN.sub(b"", body) for _, body in traffic.bodies), name
        assert not any(name.encode() in BASE64_RUN.sub(b"", frame) for frame in traffic.frames), name
    # The UI itself says "Reference" (the open reference's button) and explains it in text; a slider,
    # the player's data and the requests must never name a condition, generic or not.
    for word in GENERIC:
        assert word not in player_state.lower(), word
        assert word not in "".join(columns).lower(), word
        assert not any(word in url.lower() for url in traffic.urls), word
        leaks = [url for url, body in traffic.bodies if not shipped_code(url, body)
                 and word.encode() in BASE64_RUN.sub(b"", body).lower()]
        assert not leaks, (word, leaks)
    assert len(traffic.frames) > 10 and len(traffic.urls) > 5
