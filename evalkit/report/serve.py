"""Start the Streamlit app (app/server.py, installed with the package) headless and say where it is."""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import EvalkitError
from .data import ROOT

__all__ = ["APP", "app_command", "app_urls", "check_bindable", "serve_app"]

APP = ROOT / "app" / "server.py"  # st.App: Streamlit for the admin, the listener's pages beside it
# url paths of the pages in app/streamlit_app.py's PAGES (Streamlit derives them from the file names)
PAGE_PATHS = {
    "leaderboard": "",
    "rate-quality": "rate_quality",
    "quality vs cost": "quality_cost",
    "item drill-down": "drilldown",
    "listening tests vs metrics": "mushra_metrics",
}


def app_command(port: int = 8501, address: str = "localhost", app: Path = APP) -> list[str]:
    """The `streamlit run` command line: headless, no usage statistics, fixed port."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def check_bindable(address: str, port: int) -> None:
    """Refuse at once an address and port the app could not listen on: Streamlit would fail only
    after start-up, with a traceback or a log line and exit status 0."""
    if not 1 <= port <= 65535:
        raise EvalkitError(f"--port {port}: give a port from 1 to 65535")
    try:
        family, kind, proto, _name, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise EvalkitError(f"--address {address!r}: not an address of this machine ({err.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Streamlit's server binds
        try:
            probe.bind(where)
        except OSError as err:
            hint = (
                "another program listens there: give another --port"
                if err.errno == errno.EADDRINUSE
                else ("give an address of this machine, or 0.0.0.0 for all")
            )
            raise EvalkitError(f"{address}:{port} cannot be listened on ({err.strerror}); {hint}") from None


def app_urls(port: int = 8501, host: str = "localhost") -> dict[str, str]:
    return {name: f"http://{host}:{port}/{path}" for name, path in PAGE_PATHS.items()}


def serve_app(
    out: Callable[[str], None],
    port: int = 8501,
    address: str = "localhost",
    database: str | None = None,
    mushra_demo: bool = False,
) -> int:
    """Run the app until interrupted; tells `out` its page URLs first (and, with `mushra_demo`, makes the
    demo MUSHRA test ready and tells its listener and admin links). Returns Streamlit's exit status."""
    if importlib.util.find_spec("streamlit") is None:
        raise EvalkitError("the app needs Streamlit: pip install streamlit==1.67.0")
    if not APP.is_file():
        raise EvalkitError(f"{APP} not found: reinstall evalkit (its wheel carries the app)")
    check_bindable(address, port)
    host = "localhost" if address in ("0.0.0.0", "::") else address
    out("evalkit app (Ctrl-C to stop):")
    for name, url in app_urls(port, host).items():
        out(f"  {name:<18} {url}")
    if mushra_demo:  # before `env` is built: it may set the admin password hash for this run
        from ..listening.demo_mushra import announce_demo
        from ..store import connect

        announce_demo(connect(database), out, f"http://{host}:{port}")
    env = dict(os.environ, **({"EVALKIT_DB_URL": database} if database else {}))
    sys.stdout.flush()
    try:
        return subprocess.run(app_command(port, address), env=env, cwd=Path.cwd()).returncode
    except KeyboardInterrupt:
        return 0
