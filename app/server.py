"""evalkit's web server: the Streamlit app for the admin, and beside it, in the same process, the listener's
pages and the sign-in page (evalkit.listening.web, plain Starlette: one request per step, no script reruns).

Every Streamlit path (pages, websocket, media, metrics) needs the admin's session cookie; listeners
reach /listen and its API only. Run it with `evalkit app`, or `streamlit run app/server.py`.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import streamlit as st
import ui
from sqlalchemy import Engine
from starlette.middleware import Middleware

from evalkit.listening.web import AdminGate, ListenerWeb, SecurityHeaders
from evalkit.store import connect, database_url


def return_freed_memory() -> None:
    """Every audio response is a buffer of about a megabyte. glibc raises its mmap threshold once such
    buffers are freed and then keeps them in its heaps, so memory would stay up after the listeners
    leave; a fixed threshold hands every freed buffer straight back to the system."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


@cache
def engine(url: str) -> Engine:
    return connect(url)


def database() -> Engine:
    return engine(database_url())


return_freed_memory()
listener = ListenerWeb(database, ui.configured_hash)
app = st.App(
    Path(__file__).resolve().parent / "streamlit_app.py",
    routes=listener.routes(),
    middleware=[Middleware(SecurityHeaders), Middleware(AdminGate, engine=database)],
)
