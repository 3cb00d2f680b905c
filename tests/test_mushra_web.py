"""The listener's HTTP API, the admin's sign-in and the doors in front of every other page (Starlette TestClient).

The app under test is evalkit.mushra.web's routes and middleware over a real database; a stand-in
route answers where Streamlit's pages and websocket would (the real server is driven by URL in
tests/test_mushra_browser.py).
"""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from test_mushra_app import make_tiny_test

from evalkit import mushra
from evalkit.mushra import listener, web
from evalkit.mushra.auth import SESSION_HOURS_VAR, SigninPolicy, hash_password
from evalkit.store.models_mushra import MushraEvent, MushraParticipant, MushraSigninFailure, MushraTrial

PASSWORD = "correct horse battery"
POLICY = SigninPolicy(client_failures=3, account_failures=50, window_s=300, lock_s=60)
EVIL = "http://evil.example/pixel.png"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mushra_web")
    consent = f"Read this. ![tracker]({EVIL}) [more](http://evil.example/x) <img src='{EVIL}'> **Thank you.**"
    found = make_tiny_test(
        folder,
        f"sqlite:///{folder / 'evalkit.db'}",
        min_play_seconds=0.05,
        consent=consent,
        title="A tiny listening test ![x](http://evil.example/t.png)",
        questionnaire=[
            {"id": "age", "text": "Age", "type": "number", "min": 16, "max": 110, "required": False},
            {"id": "level", "text": "Level in dB", "type": "number", "min": -20.5, "max": 0.5},
            {"id": "phones", "text": "Headphones?", "type": "choice", "choices": ["yes", "no"]},
            {"id": "notes", "text": "Notes", "type": "text", "required": False},
        ],
    )
    return SimpleNamespace(**vars(found), hash=hash_password(PASSWORD, n=2**10))


def make_app(tiny) -> Starlette:
    async def stand_in(request):  # where Streamlit's pages, media and metrics would answer
        return PlainTextResponse(f"admin content at {request.url.path}")

    async def stream(websocket):
        await websocket.accept()
        await websocket.send_text("admin websocket")
        await websocket.close()

    listener_web = web.ListenerWeb(lambda: tiny.engine, lambda: tiny.hash, POLICY)
    routes = [*listener_web.routes(), WebSocketRoute("/_stcore/stream", stream), Route("/{path:path}", stand_in)]
    return Starlette(
        routes=routes,
        middleware=[Middleware(web.SecurityHeaders), Middleware(web.AdminGate, engine=lambda: tiny.engine)],
    )


@pytest.fixture
def client(tiny):
    with TestClient(make_app(tiny), base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


class Listener:
    """What the listener page does, over HTTP."""

    def __init__(self, client, token):
        self.client, self.headers = client, {web.TOKEN_HEADER: token}

    def post(self, path, body=None, expect=200):
        response = self.client.post(path, json=body or {}, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()

    def step(self, expect=200, **body):
        return self.post("/api/listen/step", body, expect)

    def play(self, trial, stimulus, expect=200, **extra):
        body = {"phase": trial["phase"], "position": trial["position"], "stimulus": stimulus, "offset": 0.0, **extra}
        return self.post("/api/listen/play", body, expect)

    def play_all(self, page):
        trial = page["trial"]
        for stimulus in [trial["ref"], *trial["stimuli"]]:
            self.play(trial, stimulus["id"])
            time.sleep(0.07)  # the test's minimum is 0.05 s of the server's clock
        return self.play(trial, None)["heard"]


def join(client, tiny) -> Listener:
    """A new listener from the open link (a fresh browser: this one's open-link cookie is dropped)."""
    client.cookies.clear()
    response = client.get(f"/listen?open={tiny.info.open_token}")
    assert response.status_code == 303
    return Listener(client, response.headers["location"].split("t=")[1])


def to_trials(client, tiny, seen=None) -> tuple[Listener, dict]:
    person = join(client, tiny)
    pages = [person.post("/api/listen/enter"), person.step(action="consent"), person.step(action="instructions")]
    audio = client.get(pages[-1]["level"]["url"])
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    if seen is not None:
        seen += pages
    return person, person.step(action="level", settings={"volume": 0.5})


# -- the listener's path -------------------------------------------------------------------------


def test_a_listener_takes_the_test_over_http(client, tiny):
    seen = []
    person, page = to_trials(client, tiny, seen)
    seen.append(page)
    assert seen[0]["phase"] == "consent" and seen[0]["title"] == "A tiny listening test x"
    while page["phase"] in ("training", "trials"):
        for stimulus in [page["trial"]["ref"], *page["trial"]["stimuli"]]:
            response = client.get(stimulus["url"])
            assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        heard = person.play_all(page)
        assert all(seconds >= needed for seconds, needed in heard.values())
        ratings = {s["id"]: 10 * k for k, s in enumerate(page["trial"]["stimuli"])} if page["trial"]["rate"] else {}
        page = person.step(
            action="trial",
            phase=page["trial"]["phase"],
            position=page["trial"]["position"],
            ratings=ratings,
            client={"ms_on_page": 900},
        )
        seen.append(page)
    assert page["phase"] == "questionnaire" and [q["type"] for q in page["questions"]] == [
        "number",
        "number",
        "choice",
        "text",
    ]
    problems = person.step(422, action="questionnaire", answers={"age": 12, "level": "loud"})["problems"]
    assert problems == {
        "age": "Age: enter a number from 16 to 110",
        "level": "Level in dB: enter a number",
        "phones": "please answer: Headphones?",
    }
    done = person.step(action="questionnaire", answers={"age": None, "level": -3.25, "phones": "no", "notes": "ok"})
    assert done["phase"] == "done" and len(done["completion_code"]) == 13
    frame = mushra.ratings_frame(tiny.engine, tiny.name)
    assert len(frame[frame["participant"] == done["participant"]]) == 10
    shown = json.dumps(seen + [done])
    assert not [name for name in tiny.secret_names if name in shown and name not in ("reference", "anchor")]
    trials = json.dumps([page["trial"] for page in seen if "trial" in page]).lower()
    assert "reference" not in trials and "anchor" not in trials  # the instructions may say the words; data never
    assert "evil.example" not in shown and "<img" not in shown and "<strong>Thank you.</strong>" in shown


def test_the_open_link_remembers_this_browser(client, tiny):
    first = client.get(f"/listen?open={tiny.info.open_token}").headers["location"]
    assert client.get(f"/listen?open={tiny.info.open_token}").headers["location"] == first  # its cookie
    client.cookies.clear()
    assert client.get(f"/listen?open={tiny.info.open_token}").headers["location"] != first  # a new browser
    assert client.get("/listen?open=not-a-link").status_code == 404
    page = client.get(first)
    assert page.status_code == 200 and "listen.js" in page.text


def test_audio_urls_are_signed_per_session_and_page(client, tiny):
    person, page = to_trials(client, tiny)
    url = page["trial"]["stimuli"][0]["url"]
    response = client.get(url)
    assert response.headers["cache-control"] == "private, max-age=3600"
    assert "etag" not in response.headers and "last-modified" not in response.headers
    code, stimulus, expires, mac = url.rsplit("/", 1)[1].split(".")
    other, _ = to_trials(client, tiny)
    for forged in (
        f"{code}.{stimulus}.{int(expires) + 3600}.{mac}",
        f"{code}.{page['trial']['stimuli'][1]['id']}.{expires}.{mac}",
        f"P-0000000000.{stimulus}.{expires}.{mac}",
        f"{code}.{stimulus}.{expires}\u00b2.{mac}",  # a digit to str.isdigit, not to int()
        "nonsense",
    ):
        assert client.get(f"/api/listen/audio/{forged}").status_code == 403
    person.play_all(page)
    person.step(action="trial", phase="training", position=0, ratings={})
    stale = client.get(url)
    assert stale.status_code == 409 and "another page" in stale.json()["error"]


def test_pending_plays_survive_a_reload_and_a_stale_page_is_refused(client, tiny):
    person, page = to_trials(client, tiny)
    trial = page["trial"]
    person.play(trial, trial["stimuli"][0]["id"], loop=[0.2, 0.9])
    time.sleep(0.1)
    heard = person.post("/api/listen/enter")["trial"]["heard"]  # a reload: the open play is still going
    assert heard[trial["stimuli"][0]["id"]][0] >= 0.1 and heard[trial["stimuli"][0]["id"]][1] == 0.05
    error = person.play({**trial, "position": 3}, trial["stimuli"][0]["id"], expect=409)["error"]
    assert "out of date" in error
    assert "does not fit" in person.play(trial, trial["stimuli"][0]["id"], expect=409, loop=[0, 99])["error"]
    refused = person.step(409, action="trial", phase="training", position=0, ratings={})
    assert "not finished: sample 2 not played" in refused["error"]


def test_limits_on_sizes_and_rates(client, tiny):
    person, page = to_trials(client, tiny)
    trial = page["trial"]
    big = client.post("/api/listen/event", content=b"{" + b" " * 70_000 + b"}", headers=person.headers)
    assert big.status_code == 413 and "larger than" in big.json()["error"]
    record = person.step(
        413, action="trial", phase="training", position=0, ratings={}, client={"plays": [{"stimulus": "x" * 60}] * 100}
    )
    assert "too large" in record["error"]
    codes = [
        client.post(
            "/api/listen/play",
            headers=person.headers,
            json={"phase": "training", "position": 0, "stimulus": trial["stimuli"][0]["id"], "offset": 0},
        ).status_code
        for _ in range(60)
    ]
    assert codes.count(200) >= 40 and codes[-1] == 429  # a burst of 40, then 10 a second
    with tiny.engine.connect() as connection:  # the refused page stored nothing
        assert (
            connection.execute(
                select(MushraTrial.id)
                .join(listener.MushraSession)
                .join(MushraParticipant)
                .where(MushraParticipant.code == page["participant"])
            ).all()
            == []
        )


def test_a_listener_never_sees_a_traceback(client, tiny, monkeypatch, caplog):
    person = join(client, tiny)

    def broken(*args, **kwargs):
        raise RuntimeError("/srv/secret/path/evalkit.db is corrupt")

    monkeypatch.setattr(listener, "enter", broken)
    with caplog.at_level(logging.ERROR, logger="evalkit.mushra.web"):
        response = client.post("/api/listen/enter", headers=person.headers, json={})
    assert response.status_code == 500
    message = response.json()["error"]
    assert message.startswith("Something went wrong on the server (reference ") and "secret" not in message
    reference = message.split("reference ")[1][:8]
    assert reference in caplog.text and "RuntimeError: /srv/secret/path" in caplog.text  # the log has it all
    assert client.post("/api/listen/enter", headers={web.TOKEN_HEADER: "wrong"}, json={}).status_code == 500
    monkeypatch.undo()
    refused = client.post("/api/listen/enter", headers={web.TOKEN_HEADER: "wrong"}, json={})
    assert refused.status_code == 403 and refused.json() == {
        "error": "this link is not valid; check that it was copied completely"
    }
    assert client.post("/api/listen/step", headers=person.headers, content=b"not json").status_code == 409


def test_requests_from_another_site_are_refused(client, tiny):
    person = join(client, tiny)
    response = client.post("/api/listen/enter", json={}, headers={**person.headers, "origin": "http://evil.example"})
    assert response.status_code == 403 and "another site" in response.json()["error"]


# -- the doors -----------------------------------------------------------------------------------


ADMIN_PATHS = [
    "/",
    "/mushra_admin",
    "/mushra_metrics",
    "/drilldown",
    "/leaderboard",
    "/_stcore/metrics",
    "/media/0123.wav",
    "/_stcore/upload_file/x",
    "/component/x/index.html",
]


def test_without_an_admin_session_every_other_page_is_closed(client, tiny):
    person = join(client, tiny)  # a listener, link in hand, editing the URL
    for path in ADMIN_PATHS:
        page = client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == f"/signin?next={path}", path
        assert client.get(path, headers=person.headers).status_code == 403, path
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/_stcore/stream") as socket:
            socket.receive_text()
    assert closed.value.code == 1008
    assert client.get("/_stcore/health").status_code == 200 and client.get("/static/js/x.js").status_code == 200
    moved = client.get(f"/mushra_listen?t={person.headers[web.TOKEN_HEADER]}")
    assert moved.status_code == 303 and moved.headers["location"] == f"/listen?t={person.headers[web.TOKEN_HEADER]}"


def test_security_headers(client, tiny):
    for path, strict in (("/listen", True), ("/signin", True), ("/api/listen/page", True), ("/_stcore/health", False)):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert (
            headers["referrer-policy"] == "same-origin"
            and "frame-ancestors 'none'" in headers["content-security-policy"]
        )
        assert ("default-src 'none'" in headers["content-security-policy"]) == strict
        assert "http:" not in headers["content-security-policy"] and "*" not in headers["content-security-policy"]


def sign_in(client, password, **headers):
    return client.post("/signin?next=/mushra_admin", data={"password": password}, headers=headers)


def test_sign_in_opens_every_page_and_survives_reloads_until_sign_out(client, tiny):
    response = sign_in(client, PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/mushra_admin"
    cookie = response.headers["set-cookie"]
    assert "evalkit_admin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert 8 * 3600 - 60 < int(cookie.split("Max-Age=")[1].split(";")[0]) <= 8 * 3600
    for path in ADMIN_PATHS:
        assert client.get(path).text == f"admin content at {path}", path
    with client.websocket_connect("/_stcore/stream") as socket:
        assert socket.receive_text() == "admin websocket"
    assert client.get("/mushra_admin").status_code == 200  # a reload: the cookie is all it needs
    assert client.get("/signout").headers["location"] == "/signin"
    assert client.get("/mushra_admin", headers={"accept": "text/html"}).status_code == 303
    assert sign_in(client, PASSWORD, origin="http://evil.example").status_code == 403


def test_an_admin_session_expires(client, tiny, monkeypatch):
    monkeypatch.setenv(SESSION_HOURS_VAR, str(1.5 / 3600))  # 1.5 s
    assert sign_in(client, PASSWORD).status_code == 303
    assert client.get("/mushra_admin").status_code == 200
    time.sleep(1.6)
    assert client.get("/mushra_admin").status_code == 403


def test_wrong_passwords_lock_sign_in_and_say_until_when(client, tiny):
    client.headers["x-forwarded-for"] = "10.9.9.9"  # the client is the connection's address, not a header
    answers = [sign_in(client, f"guess {k}") for k in range(3)]
    assert [a.status_code for a in answers] == [403] * 3 and "wrong account or password" in answers[0].text
    assert "too many wrong passwords from this address; try again in 60 s (at " in answers[2].text
    locked = sign_in(client, PASSWORD)
    assert locked.status_code == 403 and "try again in" in locked.text and "set-cookie" not in locked.headers
    with tiny.engine.begin() as connection:  # the test cannot wait a minute: the failures are forgotten
        connection.execute(delete(MushraSigninFailure))
    assert sign_in(client, PASSWORD).status_code == 303
    flood = sign_in(client, PASSWORD)  # six attempts in seconds: refused before any password is checked
    assert flood.status_code == 403 and "too many sign-in attempts from this address" in flood.text


# -- what a broken or hostile client sends ---------------------------------------------------------


def test_wrong_shapes_and_deep_nesting_get_a_message_not_a_server_error(client, tiny):
    person, page = to_trials(client, tiny)
    stimulus = page["trial"]["stimuli"][0]["id"]
    for phase in (["training"], {"training": 0}):
        refused = person.play({**page["trial"], "phase": phase}, stimulus, expect=409)
        assert refused["error"].startswith("unknown trial phase")
        assert "unknown trial phase" in person.step(409, action="trial", phase=phase, position=0, ratings={})["error"]
    for deep in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000):  # 10 kB, under the size limit
        nested = client.post("/api/listen/step", content=deep, headers=person.headers)
        assert nested.status_code == 409 and "nested too deeply" in nested.json()["error"]


def test_text_a_database_cannot_hold_is_made_storable(client, tiny):
    """NUL and a lone surrogate are valid JSON escapes that PostgreSQL refuses in JSONB (a server error there, the
    listener's answers lost); they are dropped or replaced on arrival, so every database stores the same text."""
    person = join(client, tiny)
    person.post("/api/listen/enter")
    raw = b'{"kind": "note", "payload": {"text": "a\\u0000b \\ud800 \\ud83d\\ude00", "\\u0000k": 1}}'
    posted = client.post(
        "/api/listen/event", content=raw, headers={**person.headers, "content-type": "application/json"}
    )
    assert posted.status_code == 200
    with tiny.engine.connect() as connection:
        payload = connection.execute(
            select(MushraEvent.payload).where(MushraEvent.kind == "client_note").order_by(MushraEvent.id.desc())
        ).scalar()
    assert payload == {"text": "ab \ufffd \U0001f600", "k": 1}  # a proper pair is kept as its character


def test_paths_under_the_listener_prefixes_that_are_no_listener_route_stay_closed(client, tiny):
    """/listen/ and /api/listen/ are open to everyone, so a path there that no listener route answers (a "..", a
    typo) must not fall through to the admin's pages behind the gate."""
    for path in (
        "/listen/assets/%2e%2e%2f%2e%2e%2fmushra_admin",
        "/api/listen/audio/..%2f..%2f_stcore%2fmetrics",
        "/listen/assets/",
        "/listen/anything",
        "/api/listen/admin",
    ):
        response = client.get(path, headers={"accept": "text/html"})
        assert response.status_code == 404 and "admin content" not in response.text, path
    assert client.get("/listen/assets/listen.js").status_code == 200


def test_an_open_link_and_reloads_cannot_be_used_to_fill_the_database(client, tiny):
    """Without its cookie each visit of the open link makes a participant, and each entry logs a resume: both are
    limited (a lab of 30 behind one address still joins at once)."""
    joined = []
    for _ in range(32):
        client.cookies.clear()
        joined.append(client.get(f"/listen?open={tiny.info.open_token}").status_code)
    assert joined[:30] == [303] * 30 and joined[-1] == 429
    person = Listener(client, mushra.invite(tiny.engine, tiny.name)[0].token)
    entries = [client.post("/api/listen/enter", json={}, headers=person.headers).status_code for _ in range(22)]
    assert entries[:20] == [200] * 20 and entries[-1] == 429


def test_a_play_left_open_when_the_tab_closed_does_not_count_until_the_listener_returns(client, tiny):
    """Sample 1 playing (looped), the tab closed, the link opened a day later: the old play counts one pass of its
    loop region at most, in what the page needs and in the stored play log, not the whole day."""
    from datetime import timedelta

    from evalkit.store.models import utcnow

    token = join(client, tiny).headers[web.TOKEN_HEADER]
    for step in (listener.enter, listener.accept_consent, listener.finish_instructions, listener.confirm_level):
        page = step(tiny.engine, token)
    trial, now = page.trial, utcnow()
    listener.record_play(tiny.engine, token, trial.phase, trial.position, trial.stimuli[0], 0.0, [0.2, 0.9], now)
    back = listener.enter(tiny.engine, token, now + timedelta(days=1))
    heard = {stimulus: seconds for stimulus, seconds, _ in back.trial.heard}
    assert heard[trial.stimuli[0]] == pytest.approx(0.7)
    soon = listener.enter(tiny.engine, token, now + timedelta(days=1, seconds=5))  # a reload: nothing open now
    assert {s: h for s, h, _ in soon.trial.heard} == heard


def test_one_audio_link_replayed_by_a_script_is_limited(client, tiny):
    """Every fetch decodes and dithers a file: a page's stimuli loaded several times pass, a flood of one link not."""
    person, page = to_trials(client, tiny)
    url = page["trial"]["stimuli"][0]["url"]
    codes = [client.get(url).status_code for _ in range(104)]
    assert codes[:95] == [200] * 95 and codes[-1] == 429
    other, other_page = to_trials(client, tiny)  # another listener's audio is not held up
    assert client.get(other_page["trial"]["stimuli"][0]["url"]).status_code == 200
