"""What every page shares: the database binding, the admin's session, the run picker, figure display."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from evalkit.errors import EvalkitError
from evalkit.listening.auth import ENV_VAR, AdminSession, admin_session
from evalkit.listening.web import ADMIN_COOKIE
from evalkit.report import RunData, list_runs, load_run
from evalkit.store import connect, database_url

__all__ = [
    "engine",
    "database",
    "configured_hash",
    "admin_cookie",
    "signed_in",
    "pick_run",
    "show_figure",
    "show_statistics",
]


@st.cache_resource
def engine(url: str) -> Engine:
    """The one database binding (keyed by URL, so a changed $EVALKIT_DB_URL gets its own engine)."""
    return connect(url)


def database() -> Engine:
    return engine(database_url())


def configured_hash() -> str | None:
    """The admin password hash from the app's secrets, if any; otherwise the library reads the environment."""
    try:
        return st.secrets.get(ENV_VAR) if st.secrets.load_if_toml_exists() else None
    except Exception:  # a malformed secrets file must not open the admin: fall back to the environment
        return None


def admin_cookie() -> str | None:
    """The admin session token the browser sent (set by the sign-in page, HttpOnly)."""
    return st.context.cookies.get(ADMIN_COOKIE)


def signed_in() -> AdminSession | None:
    """The admin's live session, checked on every run (so an expired one stops at the next click)."""
    return admin_session(database(), admin_cookie())


@st.cache_data(ttl=30, show_spinner="Reading results…")
def _run(url: str, run_id: str) -> RunData:
    # Cached for 30 s: pages rerun on every widget change, new results still show up soon.
    return load_run(engine(url), run_id)


def pick_run() -> RunData | None:
    """The sidebar's run selector (shared by all pages); None, with a hint, when there is no run."""
    try:
        runs = list_runs(database())
    except EvalkitError as err:
        st.error(str(err))
        return None
    if not runs:
        st.info(
            "No runs in the database yet: score an experiment with `evalkit run EXPERIMENT.yaml` (or `evalkit demo`)."
        )
        return None
    run_id = st.sidebar.selectbox("Run", runs, key="run")
    run = _run(database_url(), run_id)
    for note in run.notes:
        st.sidebar.caption(note)
    return run


def show_figure(figure) -> None:
    st.pyplot(figure, clear_figure=False, width="stretch")


def show_statistics(view) -> None:
    """A listening test's statistics (a StatisticsView or AgreementView): the type's tables and plots, and who
    was left out and why."""
    for _, caption, table in view.statistics:
        st.subheader(caption)
        st.dataframe(table, hide_index=True, column_config={"p_value": st.column_config.NumberColumn(format="%.3g")})
    for _, caption, figure in view.figures:
        show_figure(figure)
        st.caption(caption)
    if view.excluded:
        with st.expander(f"{len(view.excluded)} listener(s) excluded by rejection rules or post-screening"):
            st.table({"listener": list(view.excluded), "reason": list(view.excluded.values())})
