"""End to end in headless Chromium: a listener takes an ACR, DCR, CCR, AB, ABX and BS.1116 test, and a panel worker
passes qualification and the antiphase and Huggins-pitch headphone checks, on the real server; the faint-tones check,
ACR's gold and trapping pages, and a session that runs out of time end to end too.

One server (`streamlit run app/server.py`) and one browser for the module, against a SQLite database holding a
test of every type (generated 1 s items, pre-rendered conditions). Each listener plays every stimulus until the
page counts it heard, answers by clicking the type's scale or choices, and goes on to the completion code; every
stored response is checked against what the page showed (typed: score with its scale, or choice with the
condition it names). Nothing the browser receives may name a condition, item or file.
Needs Debian's chromium and the playwright package (never `playwright install`).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from listening_helpers import without_server_random
from test_listening_types import ITEMS, create, definition, plan_of, sources  # noqa: F401 (a fixture)
from test_mushra_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Traffic, serve

from evalkit import listening
from evalkit.listening.crowd import rejections_frame
from evalkit.store import connect

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")

NAMES = [*ITEMS, "noisy", "noisier", ".wav", "environment/", "antiphase", "huggins", "trap"]
REDIRECT = "https://panel.example/done?cc={code}&who={panel_id}"
CROWD = {"panels": {"prolific": {"completion_code": "C0DE1", "screened_out_code": "SCR33N", "redirect": REDIRECT}}}
QUALIFY = [
    {"id": "hearing", "text": "Is your hearing normal?", "type": "choice", "choices": ["yes", "no"], "accept": ["yes"]}
]
TESTS = {
    "acr-test": {"trials_per_session": 3},
    "dcr-test": {"trials_per_session": 2},
    "ccr-test": {"trials_per_session": 2},
    "ab-test": {"trials_per_session": 2, "forced": False},
    "abx-test": {"trials_per_session": 2},
    "bs1116-test": {"trials_per_session": 2, "training": {"items": ["alpha"]}},
}
ACR_TESTS = {  # ACR tests with P.808's parts and a panel's
    "crowd-test": {
        "open_link": True,
        "crowd": CROWD,
        "qualification": QUALIFY,
        "trials_per_session": 1,
        "environment": [{"check": "antiphase", "trials": 2, "pass": 1}, {"check": "huggins", "trials": 2, "pass": 2}],
    },
    "checked-test": {
        "trials_per_session": 1,
        "environment": {"check": "tones", "trials": 2, "pass": 2},
        "gold": [{"item": "alpha", "condition": "reference", "accept": [4, 5]}],
        "trapping": [{"path": "bravo.wav", "answer": 2}],
    },
    "timed-test": {"open_link": True, "crowd": {**CROWD, "time_limit_minutes": 5}},
}
PAGE_STATE = (
    "() => ({ids: window.__listen.ids, choice: window.__listen.choice, playing: window.__listen.player.playing})"
)


@pytest.fixture(scope="module")
def app(sources, tmp_path_factory):  # noqa: F811 (the fixture's value)
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    folder = tmp_path_factory.mktemp("listening_browser")
    url = f"sqlite:///{folder / 'evalkit.db'}"
    engine = connect(url)
    for name, options in TESTS.items():
        create(engine, sources, folder, definition(name.split("-")[0], **options))
    for name, options in ACR_TESTS.items():
        create(engine, sources, folder, definition("acr", name=name, **options))
    with serve(folder, url) as (base, log):
        yield SimpleNamespace(engine=engine, base=base, log=log)
    engine.dispose()


@pytest.fixture(scope="module")
def browser(app):
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Listener:
    """One listener's tab (a fresh browser context: its own storage), with what it saw and what went wrong."""

    def __init__(self, browser, url):
        self.context = browser.new_context(viewport={"width": 1100, "height": 900})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.traffic = Traffic(self.page)
        self.page.goto(url)

    def click(self, name):
        self.page.get_by_role("button", name=name, exact=True).click(timeout=WAIT_MS)

    def to_trials(self, qualify=None):
        self.click("I agree, continue")
        if qualify is not None:
            self.page.get_by_label(qualify, exact=True).check(timeout=WAIT_MS)
            self.click("Continue")
            if qualify != "yes":
                return self.left("qualification")
        self.click("Start")
        self.page.get_by_text("Play the level signal").click(timeout=WAIT_MS)
        self.page.wait_for_timeout(300)
        self.page.get_by_text("The level is comfortable").click()
        self.left("level_check")

    def left(self, phase):
        self.page.wait_for_function(
            f"() => document.getElementById('app').dataset.phase !== '{phase}'", timeout=WAIT_MS
        )

    def phase(self):
        return self.page.evaluate("() => document.getElementById('app').dataset.phase")

    def hear_all(self, heading):
        """Every stimulus button in turn (by its key), until the page counts it heard; then stop."""
        self.page.get_by_text(heading, exact=True).wait_for(timeout=WAIT_MS)
        self.page.wait_for_function(
            "() => document.querySelectorAll('.pk-stimulus').length > 0 && "
            "document.querySelectorAll('.pk-stimulus:disabled').length === 0",
            timeout=WAIT_MS,
        )
        buttons = self.page.locator(".pk-stimulus")
        for index in range(buttons.count()):
            buttons.nth(index).click()
            try:
                self.page.wait_for_function(
                    f"() => document.querySelectorAll('.pk-stimulus')[{index}].classList.contains('played')",
                    timeout=WAIT_MS,
                )
            except playwright.TimeoutError:
                state = self.page.evaluate(
                    "() => ({heard: window.__listen.heard, need: window.__listen.needed(), "
                    "hint: document.querySelector('.mu-hint').textContent})"
                )
                raise AssertionError(f"stimulus {index + 1} never counted as heard: {state}") from None
        if self.page.evaluate(PAGE_STATE)["playing"]:
            self.page.keyboard.press("Space")

    def answer(self, label, reload=False):
        """Pick `label` (then, with `reload`, reload the tab: the same page, its plays and the choice kept), note what
        the page showed, press Next and wait for the next page."""
        self.page.get_by_role("radio", name=label, exact=True).click()
        shown = {**self.page.evaluate(PAGE_STATE), "label": label}
        if reload:
            self.page.wait_for_timeout(300)  # the last play report reaches the server
            self.page.reload()
            self.page.wait_for_function(
                "() => window.__listen && window.__listen.buttons.length > 0 && "
                "document.querySelectorAll('.pk-stimulus.played').length === "
                "window.__listen.buttons.length",
                timeout=WAIT_MS,
            )
            resumed = self.page.evaluate(PAGE_STATE)
            assert (resumed["ids"], resumed["choice"]) == (shown["ids"], shown["choice"])
            assert self.page.get_by_role("radio", name=label, exact=True).get_attribute("aria-checked") == "true"
        key = self.page.evaluate("() => document.getElementById('app').dataset.key")
        self.page.locator(".mu-next:not([disabled])").click(timeout=WAIT_MS)
        self.page.wait_for_function(
            f"() => document.getElementById('app').dataset.key !== {json.dumps(key)}", timeout=WAIT_MS
        )
        return shown

    def take(self, choose, reload_at=None):
        """Every test page: heard, answered with `choose(position, page state)`; the tab reloaded at `reload_at`."""
        shown = []
        while self.phase() == "trials":
            position = len(shown)
            self.hear_all(f"Page {position + 1} of {self.page.evaluate('() => window.__listen.trial.count')}")
            shown.append(self.answer(choose(position, self.page.evaluate(PAGE_STATE)), reload=position == reload_at))
        return shown

    def finish(self):
        try:
            self.page.get_by_text("Your completion code:").wait_for(timeout=WAIT_MS)
        except playwright.TimeoutError:
            shown = self.page.evaluate("() => document.getElementById('app').innerText")
            raise AssertionError(f"no completion code; the page shows {shown!r}; errors {self.errors}") from None
        code = self.page.locator("code.completion").inner_text().strip()
        token = dict(re.findall(r"[?&](\w+)=([^&]+)", self.page.url))["t"]
        return code, token

    def close(self):
        self.context.close()
        assert not self.errors, self.errors
        check_no_names(self.traffic)


def check_no_names(traffic) -> None:
    """Nothing the listener's browser got names a condition, item or file (audio apart: it is RIFF bytes)."""
    for url, seen in zip(traffic.urls, without_server_random(traffic.urls)):
        assert not [name for name in NAMES if name in seen.lower()], url
    for url, body in traffic.bodies:
        if "/api/listen/audio/" in url:
            assert body[:4] == b"RIFF"
        elif "/api/listen/" in url:
            text = without_server_random([body.decode("utf-8", "replace")])[0].lower()
            assert not [name for name in NAMES if name in text], (url, text[:300])


def invited(app, browser, name):
    (invite,) = listening.invite(app.engine, name)
    return Listener(browser, f"{app.base}/listen?t={invite.token}")


def mine(app, name, token):
    participant = listening.current_page(app.engine, token).participant
    frame = listening.responses_frame(app.engine, name)
    return participant, frame[frame["participant"] == participant].reset_index(drop=True)


def take_test(app, browser, name, labels, reload_at=None):
    """A listener through a one-answer test: the answer's label per page from `labels`; (shown, participant, rows)."""
    listener = invited(app, browser, name)
    listener.to_trials()
    shown = listener.take(lambda position, state: labels[position % len(labels)], reload_at)
    code, token = listener.finish()
    listener.close()
    assert code and listening.current_page(app.engine, token).phase == "done"
    participant, rows = mine(app, name, token)
    return shown, participant, rows


def test_acr_in_the_browser(app, browser):
    labels = ["Good", "Poor", "Excellent"]
    shown, _, rows = take_test(app, browser, "acr-test", labels, reload_at=1)  # page 2 reloaded once answered
    assert [len(s["ids"]) for s in shown] == [1, 1, 1]
    assert rows["response"].tolist() == ["score"] * 3 and (rows["scale"] == "acr").all()
    assert rows["score"].tolist() == [4.0, 2.0, 5.0] == [float(s["choice"]) for s in shown]


def test_dcr_in_the_browser(app, browser):
    shown, _, rows = take_test(app, browser, "dcr-test", ["Slightly annoying", "Degradation is inaudible"])
    assert [len(s["ids"]) for s in shown] == [2, 2]
    assert rows["score"].tolist() == [3.0, 5.0] and (rows["scale"] == "dcr").all()
    assert (rows["other"] == "reference").all() and set(rows["condition"]) <= {"noisy", "noisier"}


def test_ccr_in_the_browser_stores_sign_corrected_scores(app, browser):
    shown, participant, rows = take_test(app, browser, "ccr-test", ["Better", "Much worse"])
    plan = plan_of(app.engine, participant)["test"]
    signs = [1.0 if trial["conditions"][0] == trial["reference"] else -1.0 for trial in plan]
    assert [s["choice"] for s in shown] == [2, -3]
    assert rows["score"].tolist() == [signs[0] * 2, signs[1] * -3] and (rows["scale"] == "ccr").all()
    assert (rows["other"] == "reference").all()


def test_ab_in_the_browser_with_no_preference(app, browser):
    shown, participant, rows = take_test(app, browser, "ab-test", ["B", "No preference"])
    plan = plan_of(app.engine, participant)["test"]
    assert shown[0]["choice"] == shown[0]["ids"][1] and shown[1]["choice"] == "none"  # opaque ids, not names
    assert rows["response"].tolist() == ["choice", "choice"] and rows["choice"].tolist() == ["b", "none"]
    names = {condition: key for condition, key in zip(plan[0]["conditions"], (rows["condition"][0], rows["other"][0]))}
    assert rows["chosen"][0] == names[plan[0]["conditions"][1]] and rows["chosen"].isna()[1]


def test_abx_in_the_browser(app, browser):
    shown, participant, rows = take_test(app, browser, "abx-test", ["A", "B"], reload_at=0)
    plan = plan_of(app.engine, participant)["test"]
    assert [len(set(s["ids"])) for s in shown] == [3, 3]  # X has an id of its own
    assert rows["choice"].tolist() == ["a", "b"] and (rows["slot"] == 2).all()
    for trial, row, picked in zip(plan, rows.itertuples(), (0, 1)):
        x = trial["conditions"][2]
        assert (row.condition == row.chosen) == (x == trial["conditions"][picked])  # X identified or not
        assert {row.condition, row.other} == {"noisy", "noisier"}


def grade(listener, heading, presses):
    """A BS.1116 page: R, then A and B by their keys, each heard until the page counts it, then graded by `presses`."""
    page = listener.page
    page.get_by_text(heading, exact=True).wait_for(timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('.mu-button').length === 3 && "
        "document.querySelectorAll('.mu-button:disabled').length === 0",
        timeout=WAIT_MS,
    )
    page.keyboard.press("r")
    page.wait_for_timeout(200)
    for index, (key, keys) in enumerate(zip("ab", presses)):
        page.keyboard.press(key)
        page.wait_for_function(
            f"() => document.querySelectorAll('.mu-button')[{index + 1}].classList.contains('played')", timeout=WAIT_MS
        )
        for press in keys:
            page.keyboard.press(press)
    page.keyboard.press("Space")
    shown = page.evaluate(
        "() => ({ids: window.__listen.ids, grades: window.__listen.sliders.map(s => s.value), "
        "labels: [...document.querySelectorAll('.mu-button')].map(b => b.textContent)})"
    )
    key = page.evaluate("() => document.getElementById('app').dataset.key")
    page.locator(".mu-next:not([disabled])").click(timeout=WAIT_MS)
    page.wait_for_function(f"() => document.getElementById('app').dataset.key !== {json.dumps(key)}", timeout=WAIT_MS)
    return shown


def test_bs1116_in_the_browser_grades_a_and_b_against_the_reference(app, browser):
    listener = invited(app, browser, "bs1116-test")
    listener.to_trials()
    for position in (1, 2):  # training: one page per coded condition, heard, not graded
        grade(listener, f"Training {position} of 2", [[], []])
    up, down, big = "ArrowUp", "ArrowDown", "Shift+ArrowUp"
    shown = [
        grade(listener, "Page 1 of 2", [[big, up], [big, big]]),
        grade(listener, "Page 2 of 2", [[down], [big] * 3]),
    ]
    code, token = listener.finish()
    listener.close()
    assert code and shown[0]["labels"] == ["Reference", "A", "B"]
    assert [s["grades"] for s in shown] == [[4.1, 5.0], [2.9, 5.0]]  # from the middle (3.0), steps of 0.1, at most 5
    participant, rows = mine(app, "bs1116-test", token)
    plan = plan_of(app.engine, participant)["test"]
    assert rows["score"].tolist() == [4.1, 5.0, 2.9, 5.0] and (rows["scale"] == "bs1116").all()
    assert rows["slot"].tolist() == [0, 1, 0, 1]
    for _trial, pair in zip(plan, (rows.iloc[:2], rows.iloc[2:])):
        assert pair["condition"].tolist() == pair["other"].tolist()[::-1]  # A and B, each against the other
        assert "reference" in pair["condition"].tolist() and pair["kind"].tolist().count("reference") == 1


def test_a_panel_worker_through_qualification_and_both_headphone_checks(app, browser):
    open_token = listening.test_info(app.engine, "crowd-test").open_token
    listener = Listener(browser, f"{app.base}/listen?open={open_token}&PROLIFIC_PID=w1&STUDY_ID=s1")
    listener.to_trials(qualify="yes")
    token = dict(re.findall(r"[?&](\w+)=([^&]+)", listener.page.url))["t"]
    participant = listening.current_page(app.engine, token).participant
    plan = plan_of(app.engine, participant)["environment"]
    labels = ("First", "Second", "Third")
    for position, trial in enumerate(plan):
        listener.hear_all(f"Headphone check {position + 1} of {len(plan)}")
        wrong = position == 0  # one antiphase page answered wrong: 1 of 2 is enough there
        listener.answer(labels[trial["answer"] % 3] if wrong else labels[trial["answer"] - 1])
    listener.take(lambda position, state: "Fair")
    code, _ = listener.finish()
    link = listener.page.get_by_role("link", name="Return to the study site").get_attribute("href")
    listener.close()
    assert code == "C0DE1" and link == "https://panel.example/done?cc=C0DE1&who=w1"
    session = listening.current_page(app.engine, token)
    assert session.phase == "done"
    _, rows = mine(app, "crowd-test", token)
    assert rows["score"].tolist() == [3.0] and (rows["scale"] == "acr").all()
    checks = _checks(app, participant)
    assert checks["qualification"]["passed"] and checks["environment_passed"]
    assert [(a["check"], a["ok"]) for a in checks["environment"]] == [
        ("antiphase", False),
        ("antiphase", True),
        ("huggins", True),
        ("huggins", True),
    ]

    # Another worker does not qualify: the page ends with the panel's screened-out code.
    other = Listener(browser, f"{app.base}/listen?open={open_token}&PROLIFIC_PID=w2&STUDY_ID=s1")
    other.to_trials(qualify="no")
    other.page.get_by_text("This test ends here for you.").wait_for(timeout=WAIT_MS)
    assert other.page.locator("code.completion").inner_text().strip() == "SCR33N"
    other.close()
    assert set(rejections_frame(app.engine, "crowd-test")["panel_id"]) == {"w2"}


def _checks(app, participant):
    from sqlalchemy import select

    from evalkit.store.models_mushra import MushraParticipant, MushraSession

    with app.engine.connect() as connection:
        return connection.execute(
            select(MushraSession.checks).join(MushraParticipant).where(MushraParticipant.code == participant)
        ).scalar_one()


def test_tones_check_and_acr_gold_and_trapping_pages_in_the_browser(app, browser):
    """Two faint-tones pages answered by count, then the ACR pages: a gold clip and a trapping clip look like any
    other page (nothing sent says which is which); their answers go to the session's checks, not the ratings."""
    listener = invited(app, browser, "checked-test")
    listener.to_trials()
    token = dict(re.findall(r"[?&](\w+)=([^&]+)", listener.page.url))["t"]
    participant = listening.current_page(app.engine, token).participant
    plan = plan_of(app.engine, participant)
    for position, trial in enumerate(plan["environment"]):
        listener.hear_all(f"Headphone check {position + 1} of 2")
        assert listener.page.get_by_text("How many tones did you hear?").is_visible()
        listener.answer(str(trial["answer"]))
    kinds = [trial.get("kind") for trial in plan["test"]]
    assert sorted(kinds, key=str) == [None, "gold", "trap"]
    wanted = {"gold": "Excellent", "trap": "Poor", None: "Fair"}
    shown = listener.take(lambda position, state: wanted[kinds[position]])
    code, _ = listener.finish()
    listener.close()
    assert code and [len(s["ids"]) for s in shown] == [1, 1, 1]
    for url, body in listener.traffic.bodies:
        if "/api/listen/" in url and "/audio/" not in url:
            text = without_server_random([body.decode("utf-8", "replace")])[0]
            assert "gold" not in text.lower() and "accept" not in text, url
    _, rows = mine(app, "checked-test", token)
    assert rows["score"].tolist() == [3.0] and (rows["scale"] == "acr").all()  # the real page only
    checks = _checks(app, participant)
    assert [a["ok"] for a in checks["environment"]] == [True, True] and checks["environment_passed"]
    assert [(a["answer"], a["ok"]) for a in checks["gold"]] == [(5.0, True)]
    assert [(a["answer"], a["ok"]) for a in checks["trap"]] == [(2.0, True)]
    from evalkit.listening.analysis import load_test

    assert participant not in load_test(app.engine, "checked-test").rejected


def test_a_session_past_its_time_limit_ends_on_the_expired_page(app, browser):
    from datetime import timedelta

    from sqlalchemy import update

    from evalkit.store.models import utcnow
    from evalkit.store.models_mushra import MushraSession

    open_token = listening.test_info(app.engine, "timed-test").open_token
    listener = Listener(browser, f"{app.base}/listen?open={open_token}&PROLIFIC_PID=late1&STUDY_ID=s1")
    listener.to_trials()
    token = dict(re.findall(r"[?&](\w+)=([^&]+)", listener.page.url))["t"]
    listener.hear_all("Page 1 of 9")
    participant = listening.current_page(app.engine, token).participant
    with app.engine.begin() as connection:  # the five minutes are up while the listener is on page 1
        connection.execute(
            update(MushraSession)
            .where(MushraSession.participant_id == _participant_id(app, participant))
            .values(deadline=utcnow() - timedelta(minutes=1))
        )
    listener.page.get_by_role("radio", name="Good", exact=True).click()
    listener.page.locator(".mu-next:not([disabled])").click(timeout=WAIT_MS)
    ended = "The time for this test has run out; thank you for your time."
    listener.page.get_by_text(ended, exact=True).wait_for(timeout=WAIT_MS)  # the server's closing page
    assert listener.page.locator(".message.warning").inner_text().startswith("the time for this test has run out")
    assert listener.phase() == "expired" and not listener.page.locator(".mu-next").count()
    listener.page.reload()  # and it stays ended
    listener.page.get_by_text(ended, exact=True).wait_for(timeout=WAIT_MS)
    listener.close()
    _, rows = mine(app, "timed-test", token)
    assert rows.empty  # the late answer was refused


def _participant_id(app, code):
    from sqlalchemy import select

    from evalkit.store.models_mushra import MushraParticipant

    with app.engine.connect() as connection:
        return connection.execute(select(MushraParticipant.id).where(MushraParticipant.code == code)).scalar_one()
