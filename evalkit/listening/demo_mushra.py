"""The demo MUSHRA test (tests_mushra/demo.yaml), made ready for listeners once: created, launched, open link.

`make demo` calls `announce_demo` just before it starts the app (same process, so an admin password
made here reaches the server); rerunning reuses the stored test and its cached stimuli.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Engine

from ..errors import ConfigError
from ..resources import data_path
from .admin import DEFAULT_CACHE_ROOT, DEFAULT_STIMULUS_ROOT, create_test, launch_test, list_tests
from .auth import ENV_VAR, hash_password
from .spec import load_spec

__all__ = [
    "DEMO_SPEC",
    "LISTEN_PAGE",
    "ADMIN_PAGE",
    "DemoTest",
    "ensure_demo_test",
    "demo_urls",
    "demo_admin_password",
    "announce_demo",
]

DEMO_SPEC = data_path("tests_mushra/demo.yaml")
LISTEN_PAGE, ADMIN_PAGE = "/listen", "/mushra_admin"  # evalkit.listening.web's listener page; app/views/mushra_admin.py


class DemoTest(NamedTuple):
    """Where the demo test lives in the app: paths to append to the app's base URL."""

    listener_path: str  # the open link: every visit is a new listener
    admin_path: str


def ensure_demo_test(
    engine: Engine,
    spec: str | Path = DEMO_SPEC,
    stimulus_root: str | Path = DEFAULT_STIMULUS_ROOT,
    cache_root: str | Path | None = DEFAULT_CACHE_ROOT,
    progress: Callable[[str], None] | None = None,
) -> DemoTest:
    """Create (first time only; slow: runs the codecs) and launch the demo test; idempotent."""
    name = load_spec(spec).name
    existing = {info.name: info for info in list_tests(engine)}
    info = existing.get(name) or create_test(engine, spec, stimulus_root, cache_root, progress=progress)
    if info.status == "draft":
        info = launch_test(engine, name)
    if info.status != "open" or not info.open_token:
        raise ConfigError(
            f"the demo test {name!r} is {info.status} (or has no open link); delete it "
            "(evalkit.listening.delete_test) or reopen it from the admin page"
        )
    return DemoTest(f"{LISTEN_PAGE}?open={info.open_token}", ADMIN_PAGE)


def demo_urls(demo: DemoTest, base_url: str = "http://localhost:8501") -> dict[str, str]:
    base = base_url.rstrip("/")
    return {"MUSHRA listener": base + demo.listener_path, "MUSHRA admin": base + demo.admin_path}


def demo_admin_password() -> str | None:
    """When no admin hash is configured, set a fresh one for this process and its children; returns
    the password to print (None when one was configured already, which is then left alone)."""
    if os.environ.get(ENV_VAR):
        return None
    import secrets

    password = secrets.token_urlsafe(9)
    os.environ[ENV_VAR] = hash_password(password)
    return password


def announce_demo(engine: Engine, out: Callable[[str], None], base_url: str = "http://localhost:8501") -> DemoTest:
    """Make the demo test ready and tell `out` its listener and admin URLs (and a fresh admin password
    when none is configured). Call it before starting the app, in the process that starts it."""
    out("preparing the demo MUSHRA test (the first time runs every codec, ~10 s)")
    demo = ensure_demo_test(engine)
    password = demo_admin_password()
    for name, url in demo_urls(demo, base_url).items():
        out(f"  {name:<18} {url}")
    if password:
        out(f"  admin password     {password}   (this run only; set ${ENV_VAR} to keep one)")
    return demo
