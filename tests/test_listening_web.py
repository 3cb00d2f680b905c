"""Every test type's pages over HTTP: what the page gets (opaque ids, the type's scale or choices, nothing that
names a condition), and what it may post (each answer checked against the page's layout), for ACR, DCR, CCR,
AB, ABX, BS.1116, qualification and the environment checks. The browser itself: tests/test_listening_browser.py."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from listening_helpers import without_server_random
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.testclient import TestClient
from test_listening_types import ITEMS, create, definition, plan_of, sources  # noqa: F401 (a fixture)

from evalkit import listening
from evalkit.listening import web
from evalkit.listening.playlog import RateLimiter
from evalkit.store import connect
from evalkit.store.models import utcnow
from evalkit.store.models_mushra import MushraResponse

NAMES = [*ITEMS, "noisy", "noisier", ".wav", "environment/", "antiphase", "huggins"]
TRIAL_KEYS = {
    "phase",
    "position",
    "count",
    "duration",
    "loop",
    "rate",
    "min_play",
    "sample_rate",
    "view",
    "prompt",
    "ref",
    "stimuli",
    "heard",
    "scale",
}
QUALIFY = [
    {"id": "hearing", "text": "Is your hearing normal?", "type": "choice", "choices": ["yes", "no"], "accept": ["yes"]}
]


@pytest.fixture(scope="module")
def server(sources, tmp_path_factory):  # noqa: F811 (the fixture's value)
    """One database with a test of every one-answer type (and an ACR test with qualification and checks)."""
    folder = tmp_path_factory.mktemp("listening_web")
    engine = connect(f"sqlite:///{folder / 'evalkit.db'}")
    fast = {"min_play_seconds": 0.05}
    for kind, extra in {"acr": {}, "dcr": {}, "ccr": {}, "ab": {"forced": False}, "abx": {}}.items():
        create(engine, sources, folder, definition(kind, **fast, **extra))
    create(engine, sources, folder, definition("bs1116", training={"items": ["alpha"]}, **fast))
    create(
        engine,
        sources,
        folder,
        definition(
            "acr",
            name="checked",
            qualification=QUALIFY,
            **fast,
            environment=[{"check": "antiphase", "trials": 2, "pass": 1}, {"check": "huggins", "trials": 1, "pass": 1}],
        ),
    )
    listener = web.ListenerWeb(lambda: engine, lambda: None)
    listener.step_limit = RateLimiter(rate=100, burst=100)  # these tests post many refused answers quickly
    app = Starlette(routes=listener.routes())
    with TestClient(app) as client:
        yield client, engine
    engine.dispose()


class Person:
    def __init__(self, client, engine, test):
        (invite,) = listening.invite(engine, test)
        self.client, self.engine, self.headers = client, engine, {web.TOKEN_HEADER: invite.token}
        self.pages = [self.post("/api/listen/enter")]

    def post(self, path, body=None, expect=200):
        response = self.client.post(path, json=body or {}, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()

    def step(self, expect=200, **body):
        page = self.post("/api/listen/step", body, expect)
        if expect == 200:
            self.pages.append(page)
        return page

    def hear(self, page):
        trial = page["trial"]
        if trial["duration"] > 1:  # a headphone check is heard to its end: its plays are dated back (no 4 s waits)
            at = utcnow() - timedelta(seconds=trial["duration"] + 0.5)
            token = self.headers[web.TOKEN_HEADER]
            listening.record_play(
                self.engine, token, trial["phase"], trial["position"], trial["stimuli"][0]["id"], 0.0, None, at
            )
            listening.record_play(
                self.engine,
                token,
                trial["phase"],
                trial["position"],
                None,
                0.0,
                None,
                at + timedelta(seconds=trial["duration"] + 0.2),
            )
            return
        for stimulus in trial["stimuli"]:
            self.post(
                "/api/listen/play",
                {"phase": trial["phase"], "position": trial["position"], "stimulus": stimulus["id"], "offset": 0.0},
            )
            time.sleep(0.07)
        self.post("/api/listen/play", {"phase": trial["phase"], "position": trial["position"], "stimulus": None})

    def answer(self, page, response, expect=200):
        trial = page["trial"]
        return self.step(expect, action="trial", phase=trial["phase"], position=trial["position"], response=response)

    def to_trials(self):
        self.step(action="consent")
        self.step(action="instructions")
        return self.step(action="level")

    def stored(self):
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(MushraResponse)).scalar_one()


def names_nothing(pages):
    text = without_server_random([json.dumps(pages)])[0].lower()
    assert not [name for name in NAMES if name in text]
    for page in pages:
        if "trial" in page:
            assert set(page["trial"]) == TRIAL_KEYS and set(page["trial"]["prompt"]) <= set(web.PROMPT_KEYS)


def refused(person, page, response, words):
    before = person.stored()
    error = person.answer(page, response, expect=409)["error"]
    assert words in error, error
    assert person.stored() == before


def test_acr_pages_offer_the_five_categories_and_refuse_anything_else(server):
    person = Person(*server, "acr-test")
    page = person.to_trials()
    trial = page["trial"]
    assert trial["view"] == "pick" and trial["ref"] is None and len(trial["stimuli"]) == 1
    assert [o["value"] for o in trial["prompt"]["options"]] == [5, 4, 3, 2, 1]
    refused(person, page, {"choice": 4}, "not played")  # heard first, by the server's clock
    person.hear(page)
    for bad in (6, 3.5, "5", True, None, [5], {"choice": 5}):
        refused(person, page, {"choice": bad}, "choose an answer")
    refused(person, page, {"choice": 4, trial["stimuli"][0]["id"]: 80}, "do not belong")  # a MUSHRA-shaped answer
    refused(person, page, {trial["stimuli"][0]["id"]: 4}, "do not belong")
    while page["phase"] == "trials":
        page = person.answer(page, {"choice": 4})
        if page["phase"] == "trials":
            person.hear(page)
    assert page["phase"] == "done" and page["completion_code"]
    frame = listening.responses_frame(person.engine, "acr-test")
    assert (frame["response"] == "score").all() and (frame["scale"] == "acr").all() and (frame["score"] == 4).all()
    names_nothing(person.pages)


def test_dcr_and_ccr_pages_rate_the_pair_on_their_scales(server):
    for test, scale, labels in (
        ("dcr-test", [5, 4, 3, 2, 1], ["Reference", "Processed"]),
        ("ccr-test", [3, 2, 1, 0, -1, -2, -3], ["First", "Second"]),
    ):
        person = Person(*server, test)
        page = person.to_trials()
        prompt = page["trial"]["prompt"]
        assert len(page["trial"]["stimuli"]) == 2 and prompt["labels"] == labels
        assert [o["value"] for o in prompt["options"]] == scale
        person.hear(page)
        refused(person, page, {"choice": max(scale) + 1}, "choose an answer")
        answers = []
        while page["phase"] == "trials":
            answers.append(scale[page["trial"]["position"] % len(scale)])
            page = person.answer(page, {"choice": answers[-1]})
            if page["phase"] == "trials":
                person.hear(page)
        frame = listening.responses_frame(person.engine, test)
        assert len(frame) == len(answers) and (frame["other"] == "reference").all()
        if test == "dcr-test":
            assert frame["score"].tolist() == answers
        else:  # sign-corrected: the processed version against the reference, whichever came first
            plan = plan_of(person.engine, person.pages[0]["participant"])["test"]
            signs = [1 if trial["conditions"][0] == trial["reference"] else -1 for trial in plan]
            assert frame["score"].tolist() == [s * a for s, a in zip(signs, answers)]
        names_nothing(person.pages)


def test_ab_and_abx_answers_must_be_one_of_the_pages_own_choices(server):
    ab = Person(*server, "ab-test")
    first = ab.to_trials()
    a, b = (s["id"] for s in first["trial"]["stimuli"])
    assert [o["label"] for o in first["trial"]["prompt"]["options"]] == ["A", "B", "No preference"]
    ab.hear(first)
    refused(ab, first, {"choice": "reference"}, "choose")
    refused(ab, first, {"choice": a.upper()}, "choose")
    second = ab.answer(first, {"choice": b})
    ab.hear(second)
    refused(ab, second, {"choice": b}, "choose")  # the last page's id: not this page's
    ab.answer(second, {"choice": "none"})
    frame = listening.responses_frame(ab.engine, "ab-test").head(2)
    assert frame["response"].tolist() == ["choice", "choice"] and frame["choice"].tolist() == ["b", "none"]
    assert frame["chosen"].iloc[0] in {"noisy", "noisier"} and frame["chosen"].isna().iloc[1]

    abx = Person(*server, "abx-test")
    page = abx.to_trials()
    a, b, x = (s["id"] for s in page["trial"]["stimuli"])
    assert page["trial"]["prompt"]["labels"] == ["A", "B", "X"] and len({a, b, x}) == 3  # X: an id of its own
    assert [o["value"] for o in page["trial"]["prompt"]["options"]] == [a, b]
    abx.hear(page)
    refused(abx, page, {"choice": x}, "say whether X is A or B")
    abx.answer(page, {"choice": a})
    row = listening.responses_frame(abx.engine, "abx-test").iloc[0]
    trial = plan_of(abx.engine, abx.pages[0]["participant"])["test"][0]
    names = {c: n for c, n in zip(trial["conditions"][:2], ("a", "b"))}
    assert row["choice"] == "a" and row["slot"] == 2 and names[trial["conditions"][2]] in "ab"
    names_nothing(ab.pages + abx.pages)


def test_bs1116_pages_take_a_grade_for_a_and_b_with_one_decimal_and_nothing_else(server):
    person = Person(*server, "bs1116-test")
    page = person.to_trials()
    trial = page["trial"]
    assert trial["phase"] == "training" and trial["view"] == "triple" and trial["ref"] is not None
    a, b = (s["id"] for s in trial["stimuli"])
    assert trial["prompt"]["labels"] == ["A", "B"] and trial["prompt"]["scale"]["step"] == 0.1
    person.hear(page)
    refused(person, page, {a: 7}, "scores are numbers from 1 to 5")  # training answers are not kept, but checked
    refused(person, page, {"choice": a}, "do not belong")
    while page["trial"]["phase"] == "training":  # one page per coded condition of the training item
        page = person.answer(page, {page["trial"]["stimuli"][0]["id"]: 4.5})
        person.hear(page)
    assert page["trial"]["phase"] == "test"
    a, b = (s["id"] for s in page["trial"]["stimuli"])
    ref = page["trial"]["ref"]["id"]
    for bad in ({a: 4.25, b: 5}, {a: 4, b: 5.01}, {a: 0.9, b: 5}, {a: 4}, {a: "4", b: 5}, {a: 4, b: 5, ref: 5}):
        refused(person, page, bad, "do not belong" if ref in bad else "not graded")
    person.answer(page, {a: 4.3, b: 5})
    frame = listening.responses_frame(person.engine, "bs1116-test")
    assert frame["score"].tolist() == [4.3, 5.0] and (frame["scale"] == "bs1116").all()
    names_nothing(person.pages)


def test_qualification_and_the_headphone_checks_are_pages_that_keep_their_answers_on_the_server(server):
    person = Person(*server, "checked")
    person.step(action="consent")
    page = person.pages[-1]
    assert page["phase"] == "qualification" and page["questions"][0]["choices"] == ["yes", "no"]
    assert "accept" not in json.dumps(page)  # which answers qualify stays on the server
    person.step(action="qualification", answers={"hearing": "yes"})
    person.step(action="instructions")
    page = person.step(action="level")
    plan = plan_of(person.engine, page["participant"])["environment"]
    seen = []
    while page["phase"] == "environment":
        trial = page["trial"]
        assert trial["view"] == "pick" and [o["value"] for o in trial["prompt"]["options"]] == [1, 2, 3]
        assert "answer" not in json.dumps(trial) and not trial["loop"]
        person.hear(page)
        refused(person, page, {"choice": 4}, "choose an answer")
        refused(person, page, {"choice": 1, "extra": 1}, "do not belong")
        seen.append(plan[trial["position"]]["check"])
        page = person.answer(page, {"choice": plan[trial["position"]]["answer"]})
    assert seen == ["antiphase", "antiphase", "huggins"] and page["phase"] == "trials"
    names_nothing(person.pages)


def test_the_page_modules_are_served_as_javascript_and_nothing_else_is(server):
    client, _ = server
    for name in ("listen.js", "core.js", "audio.js", "trial.js", "sliders.js", "pick.js", "level.js", "views.js"):
        response = client.get(f"/listen/assets/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript"), name
    for name in ("web.py", "..%2Fweb.py", "listen.html", "eslint.config.js", "nothing.js"):
        assert client.get(f"/listen/assets/{name}").status_code == 404, name


def test_an_expired_session_gets_its_closing_page_and_an_unknown_view_a_plain_refusal():
    from evalkit.listening.flow import FlowError
    from evalkit.listening.pages import Page, TrialPage

    expired = web.page_json(Page(phase="expired", participant="P-1", title="t", text="The time has run out."))
    assert expired["phase"] == "expired" and "run out" in expired["html"]
    trial = TrialPage("test", 0, 1, None, ("x",), 1.0, False, True, "audio/wav", view="a-plugin-view")
    with pytest.raises(FlowError, match="cannot be shown in the browser"):
        web.page_json(Page(phase="trials", participant="P-1", title="t", trial=trial))
