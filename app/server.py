"""evalkit's web server: the Streamlit app for the admin, and beside it, in the same process, the listener's
pages and the sign-in page (evalkit.mushra.web, plain Starlette: one request per step, no script reruns).

Every Streamlit path (pages, websocket, media, metrics) needs the admin's session cookie; listeners
reach /listen and its API only. Run it with `evalkit app`, or `streamlit run app/server.py`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import streamlit as st
import ui
from sqlalchemy import Engine
from starlette.middleware import Middleware

from evalkit.mushra.web import AdminGate, ListenerWeb, SecurityHeaders
from evalkit.store import connect, database_url


@cache
def engine(url: str) -> Engine:
    return connect(url)


def database() -> Engine:
    return engine(database_url())


listener = ListenerWeb(database, ui.configured_hash)
app = st.App(Path(__file__).resolve().parent / "streamlit_app.py", routes=listener.routes(),
             middleware=[Middleware(SecurityHeaders), Middleware(AdminGate, engine=database)])
