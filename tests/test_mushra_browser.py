"""End to end in headless Chromium (Playwright): a listener takes the demo MUSHRA test on the real server.

Starts `streamlit run app/server.py` (Streamlit for the admin, the listener's pages beside it) on a
free port against a temporary SQLite database holding tests_mushra/demo.yaml, then: a listener goes
through consent, level check, training, all six trials (clicks, keys, a loop region dragged on the
waveform, a reload mid-trial that keeps the slider positions and plays) and the questionnaire (a
number with bounds, choices, text) to the completion code; every stored rating is checked against
what the page showed; the same browser tries the admin pages by URL and is sent to the sign-in page;
the admin signs in, reloads, and signs out. No condition, item or file name may reach the listener.
Needs Debian's chromium (/usr/bin/chromium) and the playwright package (never `playwright install`).
"""

from __future__ import annotations

import contextlib
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
from listening_helpers import hear_all, without_server_random
from mushra_demo import make_demo_test
from test_mushra_app import make_tiny_test

from evalkit import mushra
from evalkit.mushra.listeners import answers_frame
from evalkit.store.models import utcnow

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")
ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "app" / "server.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
WAIT_MS = 30_000
HEAR_MS = 760  # per stimulus: the loop region (0.5 s) is the need, plus the page's margin
PASSWORD = "correct horse battery"
SHOTS = Path(os.environ.get("EVALKIT_SCREENSHOTS", ROOT / "results" / "screenshots"))
ADMIN_PAGES = ["/", "/mushra_admin", "/mushra_metrics", "/drilldown", "/rate_quality", "/quality_cost"]
NAMES = [
    "opus",
    "amr-wb",
    "codec2",
    "g722",
    "anchor",
    "lp35",
    "lp70",
    "asterisk",
    "allison",
    "june",
    "carlo",
    "ivrvoice",
    ".wav",
    ".flac",
    "demo-",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not come up in {seconds} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    demo = make_demo_test(tmp_path_factory, "mushra_browser")
    with serve(demo.folder, demo.url, EVALKIT_ADMIN_PASSWORD_HASH=mushra.hash_password(PASSWORD)) as (base, log):
        demo.base, demo.log = base, log
        yield demo


@contextlib.contextmanager
def serve(folder: Path, url: str, **env: str):
    """The real server (`streamlit run app/server.py`) on a free port over database `url`: (base URL, log file)."""
    port, log = free_port(), folder / "server.log"
    env = {**os.environ, "EVALKIT_DB_URL": url, "PYTHONUNBUFFERED": "1", **env}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, process, log)
        yield base, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # our own process group only
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


class Traffic:
    """What crossed the wire to the listener: URLs, and the bodies of every response."""

    def __init__(self, page):
        self.urls, self.bodies = [], []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("response", self.response)

    def response(self, response):
        try:
            self.bodies.append((response.url, response.body()))
        except Exception:  # redirects have no body
            pass


# -- the player, seen from the page ---------------------------------------------------------------

STATE_JS = """() => { const v = window.__mushra;
  return {ids: v.ids, ratings: v.sliders.map(s => s.value), heard: v.heard, region: v.player.region,
          gains: v.player.gains.map(g => g.gain.value), playing: v.player.playing}; }"""


def state(page) -> dict:
    return page.evaluate(STATE_JS)


def ready(page, heading: str) -> dict:
    """A trial page with every stimulus's audio arrived (each button enabled)."""
    page.get_by_text(heading, exact=True).wait_for(timeout=WAIT_MS)
    page.locator(".mu-play:not([disabled])").wait_for(timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelectorAll('.mu-button:disabled').length === 0", timeout=WAIT_MS)
    return state(page)


def loop_half_a_second(page) -> None:
    """Drag a short region on the waveform: the page widens it to 0.5 s, which then is all a play needs."""
    box = page.locator(".mu-wave-overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.30, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.32, box["y"] + 20, steps=3)
    page.mouse.up()
    region = state(page)["region"]
    assert region[1] - region[0] == pytest.approx(0.5, abs=1e-6), region


def rate_by_click(page, index: int, fraction: float) -> None:
    box = page.locator(".mu-track").nth(index).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * fraction)


def listen_to_all(page, rate=None, count: int = 8) -> None:
    """R, then each sample by its key for HEAR_MS; `rate(index)` rates the selected sample."""
    page.keyboard.press("r")
    for index in range(count):
        page.wait_for_timeout(150)
        page.keyboard.press(str(index + 1))
        page.wait_for_timeout(HEAR_MS)
        if rate:
            rate(index)
    page.keyboard.press("Space")


def next_page(page) -> dict:
    page.locator(".mu-next:not([disabled])").wait_for(timeout=WAIT_MS)
    shown = state(page)
    page.keyboard.press("n")
    return shown


# -- the listener's session ----------------------------------------------------------------------


def consent_and_level(page) -> None:
    page.get_by_role("button", name="I agree, continue").click(timeout=WAIT_MS)
    page.get_by_role("button", name="Start").click(timeout=WAIT_MS)
    page.get_by_text("Play the level signal").click(timeout=WAIT_MS)
    page.wait_for_timeout(400)
    page.get_by_text("The level is comfortable").click()


def training(page) -> None:
    ready(page, "Training 1 of 1")
    loop_half_a_second(page)
    listen_to_all(page)
    next_page(page)


def trial_by_clicks(page, shots: Path) -> dict:
    """Page 1: sliders clicked while their sample plays; another sample's slider does not move."""
    ready(page, "Page 1 of 6")
    loop_half_a_second(page)

    def rate(index):
        if index == 0:
            rate_by_click(page, 1, 0.5)  # not the selected sample's slider: inactive, stays unrated
            now = state(page)
            assert now["ratings"][1] is None
            assert sorted(now["gains"]) == [0] * (len(now["gains"]) - 1) + [1], now["gains"]  # one audible, no mix
        if index == 7:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "mushra_trial_playing.png"), full_page=True)
        rate_by_click(page, index, 0.9 - 0.1 * index)

    listen_to_all(page, rate)
    return next_page(page)


def trial_with_a_reload(page) -> dict:
    """Page 2: three samples heard and rated, the tab reloaded: the same page, with the sliders and plays kept."""
    before = ready(page, "Page 2 of 6")
    loop_half_a_second(page)
    page.keyboard.press("r")
    for index in range(3):
        page.wait_for_timeout(150)
        page.keyboard.press(str(index + 1))
        page.wait_for_timeout(HEAR_MS)
        page.keyboard.press("Shift+ArrowUp" if index % 2 else "Shift+ArrowDown")
    page.keyboard.press("Space")
    partial = state(page)
    page.wait_for_timeout(300)  # the last play report reaches the server
    page.reload()
    resumed = ready(page, "Page 2 of 6")
    assert resumed["ids"] == before["ids"] and resumed["ratings"] == partial["ratings"]
    assert resumed["ratings"][:3] == [40, 60, 40] and resumed["ratings"][3:] == [None] * 5
    assert all(resumed["heard"][i][0] >= 0.5 for i in resumed["ids"][1:4]), resumed["heard"]  # the server kept them
    assert page.locator(".mu-button.played").count() >= 3
    loop_half_a_second(page)
    listen_to_all(page, lambda index: index >= 3 and page.keyboard.press("ArrowUp"))
    return next_page(page)


def trial_by_keys(page, position: int) -> dict:
    ready(page, f"Page {position} of 6")
    loop_half_a_second(page)
    listen_to_all(page, lambda index: page.keyboard.press("Shift+ArrowUp" if (index + position) % 2 else "ArrowDown"))
    return next_page(page)


def questionnaire(page) -> str:
    page.get_by_text("A few questions").wait_for(timeout=WAIT_MS)
    page.locator("[data-question=age] input").fill("130")
    page.get_by_label("in-ear").check()
    page.get_by_label("yes").check()
    page.get_by_role("button", name="Finish").click()
    problem = page.locator("[data-question=age] .problem")
    problem.get_by_text("enter a number from 16 to 110").wait_for(timeout=WAIT_MS)
    page.locator("[data-question=age] input").fill("34.5")
    page.locator("[data-question=comments] textarea").fill("Clear instructions.")
    page.get_by_role("button", name="Finish").click()
    page.get_by_text("Your completion code:").wait_for(timeout=WAIT_MS)
    return page.locator("code.completion").inner_text().strip()


# -- the test ------------------------------------------------------------------------------------


def test_a_listener_takes_the_demo_test_and_cannot_reach_the_admin(app):
    started = time.monotonic()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors, console = [], []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: console.append(message.text))
            traffic = Traffic(page)
            page.goto(f"{app.base}/listen?open={app.info.open_token}")
            consent_and_level(page)
            token = dict(re.findall(r"[?&](\w+)=([^&]+)", page.url))["t"]
            training(page)
            shown = [trial_by_clicks(page, SHOTS), trial_with_a_reload(page)]
            shown += [trial_by_keys(page, position) for position in range(3, 7)]
            code = questionnaire(page)
            listener_pages = len(traffic.urls)
            check_roles_by_url(page, app.base)
        finally:
            browser.close()
    assert not errors, errors
    assert not [line for line in console if "Content Security Policy" in line], console
    check_ratings(app, token, code, shown)
    check_no_names(traffic, listener_pages)
    assert time.monotonic() - started < 240


def check_roles_by_url(page, base: str) -> None:
    """The listener's browser edits the URL: every admin page sends it to sign-in; then the admin signs in."""
    for path in ADMIN_PAGES:
        page.goto(base + path)
        assert page.url.startswith(f"{base}/signin"), (path, page.url)
        assert page.get_by_text("Admin password").is_visible()
    assert status_of(page, f"{base}/_stcore/metrics") == 403
    assert status_of(page, f"{base}/media/x.wav") == 403
    page.goto(f"{base}/signin?next=/mushra_admin")
    page.get_by_label("Admin password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("wrong account or password").wait_for(timeout=WAIT_MS)
    page.get_by_label("Admin password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="MUSHRA admin").wait_for(timeout=WAIT_MS)
    page.reload()  # the session is a cookie with an expiry: a reload keeps it
    page.get_by_role("heading", name="MUSHRA admin").wait_for(timeout=WAIT_MS)
    page.get_by_role("tab", name="Results").click()
    page.get_by_text("completed session(s)").first.wait_for(timeout=WAIT_MS)
    page.goto(f"{base}/mushra_metrics")
    page.get_by_role("heading", name="Listening tests vs metrics").wait_for(timeout=WAIT_MS)
    assert status_of(page, f"{base}/_stcore/metrics") == 200
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in as admin").wait_for(timeout=WAIT_MS)
    page.goto(f"{base}/mushra_admin")
    assert page.url.startswith(f"{base}/signin")


def status_of(page, url: str) -> int:
    """The status of a GET with the page's cookies. Asked again once when the connection is reset: the
    request went out on a kept-alive connection the server had just closed for being idle (a race of the
    transport, not an answer of the server's)."""
    try:
        return page.request.get(url).status
    except playwright.Error as err:
        if "ECONNRESET" not in str(err):
            raise
    return page.request.get(url).status


def check_ratings(app, token: str, code: str, shown: list[dict]) -> None:
    """Every slider's value as the page showed it is the stored score of that slider, trial by trial."""
    page = mushra.current_page(app.engine, token)
    assert page.phase == "done" and page.completion_code == code
    frame = mushra.ratings_frame(app.engine, app.name)
    mine = frame[frame["participant"] == page.participant].sort_values(["trial", "slider"])
    expected = [score for trial in shown for score in trial["ratings"]]
    assert None not in expected and len(mine) == 6 * 8
    assert mine["score"].tolist() == [float(score) for score in expected]
    assert (mine.groupby("trial")["condition"].nunique() == 8).all()
    answers = answers_frame(app.engine, app.name).set_index("participant").loc[page.participant]
    assert (answers["age"], answers["headphones"], answers["experience"], answers["comments"]) == (
        34.5,
        "in-ear",
        "yes",
        "Clear instructions.",
    )


def check_no_names(traffic: Traffic, listener_pages: int) -> None:
    """Nothing the listener's browser got (before the admin signed in) names a condition, item or file."""
    urls = traffic.urls[:listener_pages]
    data = [(url, body) for url, body in traffic.bodies if url in set(urls) and "/listen/assets/" not in url]
    assert all(body[:4] == b"RIFF" for url, body in data if "/api/listen/audio/" in url)
    texts = [(url, body.decode("utf-8", "replace")) for url, body in data if "/api/listen/audio/" not in url]
    blanked = without_server_random([*urls, *(text for _, text in texts)])
    for name in NAMES:
        assert not [url for url in blanked[: len(urls)] if name in url], name
    for (url, text), seen in zip(texts, blanked[len(urls) :]):
        leaked = [name for name in NAMES if name in seen.lower()]
        assert not leaked, (url, leaked)
        if url.endswith(("/api/listen/play", "/api/listen/step", "/api/listen/enter")) and '"trial"' in text:
            trial = without_server_random([json.dumps(json.loads(text)["trial"])])[0].lower()
            assert "reference" not in trial and "anchor" not in trial
    assert sum("/api/listen/audio/" in url for url in urls) >= 7 * 9


def test_on_a_phone_a_five_sample_page_shows_every_slider_and_the_questions_fit(app, tmp_path):
    """360 px wide, upright: the tiny test's five sliders all on screen (no sideways hunt for samples 3 to 5), and the
    questionnaire's text box inside the page. The session is moved on by the library; the browser shows each page."""
    notes = {"id": "notes", "text": "Anything else?", "type": "text", "required": False}
    tiny = make_tiny_test(tmp_path, app.url, name="phone", min_play_seconds=0.05, questionnaire=[notes])
    (invite,) = mushra.invite(tiny.engine, "phone")
    for step in (mushra.enter, mushra.accept_consent, mushra.finish_instructions):
        step(tiny.engine, invite.token)
    page = mushra.confirm_level(tiny.engine, invite.token)
    outside = "() => [...document.querySelectorAll('.mu-col, textarea')].filter(e => e.getBoundingClientRect().right > innerWidth).length"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            phone = browser.new_page(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True)
            phone.goto(f"{app.base}/listen?t={invite.token}")
            phone.locator(".mu-col").nth(5).wait_for(timeout=WAIT_MS)  # the reference and five samples
            assert phone.evaluate(outside) == 0
            while page.trial is not None:
                trial = page.trial
                at = hear_all(tiny.engine, invite.token, trial, utcnow(), 0.2)
                ratings = {s: 40 for s in trial.stimuli} if trial.phase == "test" else {}
                page = mushra.submit_trial(tiny.engine, invite.token, trial.phase, trial.position, ratings, now=at)
            phone.reload()
            phone.locator("textarea").wait_for(timeout=WAIT_MS)
            assert phone.evaluate(outside) == 0
            assert phone.evaluate("() => document.documentElement.scrollWidth") <= 360
        finally:
            browser.close()
    tiny.engine.dispose()


def test_a_failed_audio_request_is_tried_again_before_the_listener_is_told_to_reload(app, tmp_path):
    """The level signal's first request is lost (503, as from a proxy under load): the page fetches it again and the
    listener can play it instead of being told to reload."""
    tiny = make_tiny_test(tmp_path, app.url, name="flaky", min_play_seconds=0.05, questionnaire=[])
    (invite,) = mushra.invite(tiny.engine, "flaky")
    for step in (mushra.enter, mushra.accept_consent, mushra.finish_instructions):
        step(tiny.engine, invite.token)
    requests = []

    def first_fails(route):
        requests.append(route.request.url)
        route.fulfill(status=503, body="busy") if len(requests) == 1 else route.continue_()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/api/listen/audio/**", first_fails)
            page.goto(f"{app.base}/listen?t={invite.token}")
            page.locator(".mu-play:not([disabled])").wait_for(timeout=WAIT_MS)
            assert "could not be loaded" not in page.locator(".mu-hint").inner_text()
            assert len(requests) == 2 and requests[0] == requests[1]
        finally:
            browser.close()
    tiny.engine.dispose()
