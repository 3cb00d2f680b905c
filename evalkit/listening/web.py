"""The listener's side over HTTP (Starlette), and the doors to everything else.

`ListenerWeb.routes()` serves the listener page (static HTML and JavaScript), a JSON API with one
request per step (evalkit.listening.listener does the work), play reports time-stamped on arrival,
and audio behind signed, expiring, per-session URLs; plus the admin's sign-in page. `AdminGate`
puts every other path (Streamlit's pages, its websocket, media and metrics) behind an admin
session cookie; `SecurityHeaders` adds the browser-side rules. No Streamlit here: the app mounts
these beside Streamlit with st.App (app/server.py).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import secrets
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import ConfigError, EvalkitError
from ..store.models import utcnow
from . import listener
from .admin import join_open_link
from .auth import SigninError, SigninPolicy, admin_session, sign_in, sign_out
from .flow import PHASES, AccessError, FlowError
from .listener import AnswerError
from .pages import Page
from .playlog import LimitError, RateLimiter, TooLarge
from .safetext import plain_text, to_html
from .stimuli import DELIVERY_MIME
from .tokens import read_grant

__all__ = ["ListenerWeb", "AdminGate", "SecurityHeaders", "page_json", "ADMIN_COOKIE", "TOKEN_HEADER", "STATIC"]

log = logging.getLogger("evalkit.listening.web")
STATIC = Path(__file__).resolve().parent / "static"
# The page's files by name: ES modules (a browser runs a module only when served as JavaScript) and the style sheet.
MIME = {".js": "text/javascript", ".css": "text/css"}
ASSETS = {path.name: MIME[path.suffix] for path in sorted(STATIC.iterdir()) if path.suffix in MIME}
TOKEN_HEADER = "x-listener-token"
ADMIN_COOKIE = "evalkit_admin"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads keeps a "\\ud800" that has no pair as it is
MAX_BODY = 64_000  # bytes of one JSON request: a questionnaire's text answers fit, a flood does not
NO_STORE = {"cache-control": "no-store"}
PUBLIC_PATHS = {"/listen", "/signin", "/signout", "/_stcore/health"}
PUBLIC_PREFIXES = ("/listen/", "/api/listen/", "/static/")  # Streamlit's /static/: its bundles, the same for all
# Under the listener's prefixes only the listener's own routes are open: any other path there (a "..", a typo) would
# fall through to Streamlit's routes past the gate.
LISTENER_PATH = re.compile(r"/listen/assets/[\w.-]+|/api/listen/(?:enter|page|step|play|event|audio/[^/]+)")
LISTENER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Streamlit's front end needs inline styles and eval (its own bundles); nothing may come from elsewhere.
APP_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "worker-src 'self' blob:; frame-src 'self' blob: data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# same-origin, not no-referrer: tokens in URLs never go to another site, and a form post still names its Origin.
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


BROWSER_PHASES = (*PHASES, "expired")  # every phase has a page, and a closed session its own
BROWSER_VIEWS = ("sliders", "triple", "pick")  # the player views of static/views.js
PROMPT_KEYS = ("labels", "question", "scale", "options")  # what a type's prompt may tell the page


def page_json(page: Page) -> dict[str, Any]:
    """What the listener page gets: opaque ids, audio URLs, counts and definition text made safe.

    A page the browser cannot show (a phase or a plug-in type's view it has no code for) is a FlowError
    with what the listener should know."""
    if page.phase not in BROWSER_PHASES or (page.trial is not None and page.trial.view not in BROWSER_VIEWS):
        if page.completion_code:
            raise FlowError(f"this test ends here for you; your code: {page.completion_code}")
        raise FlowError(
            page.text or "this page of the listening test cannot be shown in the browser; please tell the experimenter"
        )
    data: dict[str, Any] = {
        "phase": page.phase,
        "participant": page.participant,
        "title": plain_text(page.title),
        "done": page.done,
        "total": page.total,
        "completion_code": page.completion_code,
    }
    if page.text is not None:
        data["html"] = to_html(page.text)
    if page.redirect is not None:
        data["redirect"] = page.redirect
    if page.level_stimulus is not None:
        data["level"] = {"id": page.level_stimulus, "url": _audio_url(page.level_audio)}
        data["sample_rate"] = page.sample_rate
    if page.questions:
        data["questions"] = [
            {
                **{k: q[k] for k in ("id", "type", "required", "min", "max")},
                "text": plain_text(q["text"]),
                "choices": [plain_text(c) for c in q["choices"]],
            }
            for q in page.questions
        ]
    if (trial := page.trial) is not None:
        urls = [_audio_url(grant) for grant in trial.audio]
        reference = {"id": trial.reference, "url": urls.pop(0)} if trial.reference else None
        data["trial"] = {
            "phase": trial.phase,
            "position": trial.position,
            "count": trial.count,
            "duration": trial.duration,
            "loop": trial.loop,
            "rate": trial.requires_ratings,
            "min_play": trial.min_play,
            "sample_rate": trial.sample_rate,
            "view": trial.view,
            "prompt": _prompt(trial.prompt),
            "ref": reference,  # the labelled reference button, when the type has one
            "stimuli": [{"id": s, "url": url} for s, url in zip(trial.stimuli, urls)],
            "heard": {s: [round(h, 3), round(n, 3)] for s, h, n in trial.heard},
            "scale": [list(band) for band in trial.prompt.get("scale", {}).get("bands", [])],
        }  # the sliders' bands
    return data


def _prompt(prompt: dict[str, Any]) -> dict[str, Any]:
    """A type's prompt with its words made plain text (a plug-in's labels could hold markup); only the keys the page
    uses, so nothing else a type keeps there (a condition, an answer) reaches the listener."""
    safe = {key: prompt[key] for key in PROMPT_KEYS if key in prompt}
    if "question" in safe:
        safe["question"] = plain_text(str(safe["question"]))
    if "labels" in safe:
        safe["labels"] = [plain_text(str(label)) for label in safe["labels"]]
    if "options" in safe:
        safe["options"] = [{"value": o["value"], "label": plain_text(str(o["label"]))} for o in safe["options"]]
    return safe


def _audio_url(grant: str | None) -> str | None:
    return None if grant is None else f"/api/listen/audio/{grant}"


class ListenerWeb:
    """The listener's routes over one database; rate limits live here, per process."""

    def __init__(
        self,
        engine: Callable[[], Engine],
        configured_hash: Callable[[], str | None] = lambda: None,
        policy: SigninPolicy = SigninPolicy(),
    ):
        self.engine, self.configured_hash, self.policy = engine, configured_hash, policy
        self.play_limit = RateLimiter(rate=10, burst=40)  # per session: switching by hand, keys held down
        self.event_limit = RateLimiter(rate=1, burst=10)
        self.step_limit = RateLimiter(rate=2, burst=10)
        self.signin_limit = RateLimiter(rate=0.2, burst=5)  # per client, before any database work
        # Each visit of an open link without its cookie makes a participant, and each entry writes a resume event:
        # per client and per session, so a script cannot fill the database (a lab behind one address still fits).
        self.join_limit = RateLimiter(rate=1, burst=30)
        self.enter_limit = RateLimiter(rate=1, burst=20)
        # Each audio fetch reads, resamples and dithers a file: per participant, a page of 16 stimuli loaded six times
        # at once fits, a script replaying one link does not.
        self.audio_limit = RateLimiter(rate=5, burst=100)

    def routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/listen", self.listen_page, methods=["GET"]),
            Route("/listen/assets/{name}", self.asset, methods=["GET"]),
            Route("/api/listen/enter", api(self.enter), methods=["POST"]),
            Route("/api/listen/page", api(self.page), methods=["GET"]),
            Route("/api/listen/step", api(self.step), methods=["POST"]),
            Route("/api/listen/play", api(self.play), methods=["POST"]),
            Route("/api/listen/event", api(self.event), methods=["POST"]),
            Route("/api/listen/audio/{grant}", self.audio, methods=["GET"]),
            Route("/signin", self.signin, methods=["GET", "POST"]),
            Route("/signout", self.signout, methods=["GET"]),
        ]

    # -- the listener's page and API ------------------------------------------------------------

    async def listen_page(self, request: Request) -> Response:
        open_link = request.query_params.get("open")
        if open_link is None:
            return FileResponse(STATIC / "listen.html", headers=NO_STORE)
        cookie = "evalkit_open_" + hashlib.sha256(open_link.encode()).hexdigest()[:12]
        params = {k: v for k, v in request.query_params.items() if k not in ("open", "t")}
        if not self.join_limit.allow(request.client.host if request.client else "unknown"):
            message = (
                "too many listeners joined from this address in a short time; wait a minute and open the link again"
            )
            return HTMLResponse(_message_page("Listening test", message), status_code=429, headers=NO_STORE)
        try:
            token = await run_in_threadpool(
                join_open_link, self.engine(), open_link, request.cookies.get(cookie), params
            )
        except EvalkitError as err:
            return HTMLResponse(_message_page("Listening test", str(err)), status_code=404, headers=NO_STORE)
        response = RedirectResponse(f"/listen?{urlencode({'t': token})}", status_code=303, headers=NO_STORE)
        response.set_cookie(
            cookie,
            token,
            max_age=30 * 86400,
            path="/listen",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"cache-control": "no-cache"})

    def enter(self, token: str, body: Any) -> dict:
        self.enter_limit.check(_key(token), "reloads")
        return page_json(listener.enter(self.engine(), token))

    def page(self, token: str, body: Any) -> dict:
        return page_json(listener.current_page(self.engine(), token))

    def step(self, token: str, body: dict) -> dict:
        self.step_limit.check(_key(token), "steps")
        engine, action = self.engine(), body.get("action")
        if action == "consent":
            page = listener.accept_consent(engine, token)
        elif action == "instructions":
            page = listener.finish_instructions(engine, token)
        elif action == "level":
            page = listener.confirm_level(engine, token, body.get("settings"))
        elif action == "qualification":
            page = listener.submit_qualification(engine, token, body.get("answers") or {})
        elif action == "trial":
            page = listener.submit_trial(
                engine,
                token,
                body.get("phase"),
                _integer(body.get("position")),
                body.get("response") or body.get("ratings") or {},
                body.get("client"),
            )
        elif action == "questionnaire":
            page = listener.submit_questionnaire(engine, token, body.get("answers") or {})
        else:
            raise FlowError(f"unknown step {str(action)[:40]!r}")
        return page_json(page)

    def play(self, token: str, body: dict) -> dict:
        self.play_limit.check(_key(token), "play reports")
        heard = listener.record_play(
            self.engine(),
            token,
            body.get("phase"),
            _integer(body.get("position")),
            body.get("stimulus"),
            body.get("offset", 0.0),
            body.get("loop"),
        )
        return {"heard": {s: [round(h, 3), round(n, 3)] for s, (h, n) in heard.items()}}

    def event(self, token: str, body: dict) -> dict:
        self.event_limit.check(_key(token), "events")
        listener.log_event(self.engine(), token, body.get("kind"), body.get("payload"))
        return {}

    async def audio(self, request: Request) -> Response:
        grant = request.path_params["grant"]
        if not self.audio_limit.allow((read_grant(grant) or ("",))[0]):
            message = "too many audio requests in a short time; wait a moment and reload the page"
            return JSONResponse({"error": message}, status_code=429, headers=NO_STORE)
        try:
            data = await run_in_threadpool(listener.stimulus_audio, self.engine(), grant)
        except AccessError as err:
            return JSONResponse({"error": str(err)}, status_code=403, headers=NO_STORE)
        except FlowError as err:
            return JSONResponse({"error": str(err)}, status_code=409, headers=NO_STORE)
        except Exception:  # noqa: BLE001  (a listener gets a message, the log the details)
            return _failed(request)
        # The URL carries its own expiry: the browser may keep the bytes that long, nobody else.
        return Response(data, media_type=DELIVERY_MIME, headers={"cache-control": "private, max-age=3600"})

    def _api(self, handler: Callable[[str, Any], dict]) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                _same_origin(request)
                token = request.headers.get(TOKEN_HEADER, "")
                body = await _json_body(request) if request.method == "POST" else {}
                return JSONResponse(await run_in_threadpool(handler, token, body), headers=NO_STORE)
            except AnswerError as err:
                return JSONResponse({"error": str(err), "problems": err.problems}, status_code=422, headers=NO_STORE)
            except LimitError as err:
                status = 413 if isinstance(err, TooLarge) else 429
                return JSONResponse({"error": str(err)}, status_code=status, headers=NO_STORE)
            except AccessError as err:
                return JSONResponse({"error": str(err)}, status_code=403, headers=NO_STORE)
            except (FlowError, ConfigError) as err:
                return JSONResponse({"error": str(err)}, status_code=409, headers=NO_STORE)
            except EvalkitError as err:
                return JSONResponse({"error": str(err)}, status_code=400, headers=NO_STORE)
            except Exception:  # noqa: BLE001  (a listener gets a message, the log the details)
                return _failed(request)

        return endpoint

    # -- the admin's sign-in --------------------------------------------------------------------

    async def signin(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next", "/"))
        if request.method == "GET":
            return HTMLResponse(_signin_page(target), headers=NO_STORE)
        client = request.client.host if request.client else "unknown"
        try:
            _same_origin(request)
            form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
            if not self.signin_limit.allow(client):
                raise SigninError("too many sign-in attempts from this address; wait a minute")
            session = await run_in_threadpool(
                partial(
                    sign_in,
                    self.engine(),
                    str(form.get("password", "")),
                    client,
                    configured=self.configured_hash(),
                    policy=self.policy,
                )
            )
        except (SigninError, ConfigError, FlowError) as err:
            return HTMLResponse(_signin_page(target, str(err)), status_code=403, headers=NO_STORE)
        response = RedirectResponse(target, status_code=303, headers=NO_STORE)
        max_age = int((session.expires_at - utcnow()).total_seconds())
        response.set_cookie(
            ADMIN_COOKIE,
            session.token,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def signout(self, request: Request) -> Response:
        await run_in_threadpool(sign_out, self.engine(), request.cookies.get(ADMIN_COOKIE))
        response = RedirectResponse("/signin", status_code=303, headers=NO_STORE)
        response.delete_cookie(ADMIN_COOKIE, path="/")
        return response


class AdminGate:
    """ASGI middleware: only the listener's paths, the sign-in page, Streamlit's static bundles and its
    health check are open; everything else (pages, websocket, media, metrics) needs an admin session.

    A browser without one is sent to /signin (pages) or refused with 403 (anything else; a
    websocket is closed before it opens). Old listener links (/mushra_listen?t=...) are redirected.
    """

    def __init__(self, app, engine: Callable[[], Engine]):
        self.app, self.engine = app, engine

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/mushra_listen" and scope["type"] == "http":  # invite links made before /listen
            return await _redirect(scope, receive, send, "/listen?" + scope.get("query_string", b"").decode("latin-1"))
        if path.startswith(PUBLIC_PREFIXES[:2]) and not LISTENER_PATH.fullmatch(path):
            return await PlainTextResponse("not found", status_code=404)(scope, receive, send)
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        token = HTTPConnection(scope).cookies.get(ADMIN_COOKIE)
        if token and await run_in_threadpool(admin_session, self.engine(), token) is not None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
        request = Request(scope)
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return await _redirect(scope, receive, send, "/signin?next=" + quote(path, safe="/"))
        await PlainTextResponse("sign in as admin first: /signin", status_code=403)(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: nosniff, referrers kept on this site (tokens live in URLs), no framing, a content security
    policy that lets nothing load from elsewhere (strict on the listener's pages)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        strict = scope["path"].startswith(("/listen", "/api/listen/", "/signin"))

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**HEADERS, "content-security-policy": LISTENER_CSP if strict else APP_CSP}.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


# -- helpers -----------------------------------------------------------------------------------


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FlowError("a trial position is a whole number")
    return value


async def _json_body(request: Request) -> dict:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"the request is larger than {MAX_BODY} bytes; nothing was stored")
        chunks.append(chunk)
    try:
        body = _storable(json.loads(b"".join(chunks) or b"{}"))
    except ValueError:
        raise FlowError("the request is not JSON") from None
    except RecursionError:  # a small body can nest deeper than the parser's stack
        raise FlowError("the request is nested too deeply; nothing was stored") from None
    if not isinstance(body, dict):
        raise FlowError("the request is a JSON object")
    return body


def _storable(value: Any) -> Any:
    """`value` with every string fit for any database: JSON may spell NUL and lone surrogates (a pasted comment, a
    broken client), which PostgreSQL refuses to store; NUL is dropped, a lone surrogate becomes U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def _same_origin(request: Request) -> None:
    """Refuse a request sent by another site's page (its browser names that site in Origin)."""
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise AccessError("this request came from another site")


def _failed(request: Request) -> Response:
    reference = secrets.token_hex(4)
    log.exception("%s %s failed (reference %s)", request.method, request.url.path, reference)
    message = f"Something went wrong on the server (reference {reference}). Please reload the page in a moment."
    return JSONResponse({"error": message}, status_code=500, headers=NO_STORE)


async def _redirect(scope, receive, send, location: str) -> None:
    await RedirectResponse(location, status_code=303, headers=NO_STORE)(scope, receive, send)


def _safe_next(target: str) -> str:
    """A local path to return to after sign-in (never another host)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _message_page(title: str, message: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<link rel='icon' href='data:,'><link rel='stylesheet' href='/listen/assets/listen.css'></head>"
        f"<body><main class='page'>"
        f"<h1>{html.escape(title)}</h1><p class='message'>{html.escape(message)}</p></main></body></html>"
    )


def _signin_page(target: str, error: str | None = None) -> str:
    problem = f"<p class='message error' role='alert'>{html.escape(error)}</p>" if error else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>evalkit: sign in</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
        "<link rel='stylesheet' href='/listen/assets/listen.css'></head><body><main class='page narrow'>"
        f"<h1>evalkit admin</h1>{problem}"
        f"<form method='post' action='/signin?{urlencode({'next': target})}'>"
        "<label>Admin password <input type='password' name='password' autocomplete='current-password' "
        "required autofocus></label><button type='submit' class='primary'>Sign in</button></form>"
        "</main></body></html>"
    )
