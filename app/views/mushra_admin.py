"""MUSHRA admin: create and launch tests, invite listeners, watch, analyse, export, close.

Only a signed-in admin gets here (app/streamlit_app.py and the server's gate check the session).
Text from a test definition is shown inert (evalkit.listening.safetext): it cannot load anything.
"""

from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import streamlit as st
import ui

from evalkit import listening
from evalkit.config import parse_document
from evalkit.errors import EvalkitError
from evalkit.listening.listeners import answers_frame, export_results, listener_report, to_csv
from evalkit.listening.safetext import inert_markdown
from evalkit.mushra.anova import rm_anova
from evalkit.mushra.checks import degenerate_warnings, statistics_ratings
from evalkit.mushra.design import test_setup
from evalkit.mushra.rating_plots import boxplot, mean_ci_plot
from evalkit.mushra.screening import screen
from evalkit.mushra.stats import condition_summary, paired_comparisons, permutation_test
from evalkit.report.app_views import statistics_view

TESTS_DIR = Path(__file__).resolve().parents[2] / "tests_mushra"
DATA_DIR = TESTS_DIR.parent / "data"  # where an upload may name audio, beside tests_mushra/ (unless configured)
INVITES = "mushra_admin_invites"
PICKED = "mushra_admin_test"
P_VALUES = {name: st.column_config.NumberColumn(format="%.3g") for name in ("p", "p_adjusted", "p_gg")}
PROGRESS_COLUMNS = [
    "participant",
    "label",
    "phase",
    "trials_done",
    "trials_total",
    "completion_code",
    "source",
    "started_at",
    "updated_at",
    "completed_at",
]


def listener_url() -> str:
    """Where listeners open a test: this server's /listen (from the admin's own address)."""
    here = urlsplit(st.context.url or "http://localhost:8501/mushra_admin")
    return f"{here.scheme}://{here.netloc}/listen"


# -- create --------------------------------------------------------------------------------------


def chosen_spec() -> listening.TestSpec | None:
    """A definition from tests_mushra/ or an uploaded YAML (its relative paths: from tests_mushra/; the
    audio it names must lie in tests_mushra/ or data/, or the folders the operator configured)."""
    source = st.radio("Definition", ["From tests_mushra/", "Upload a YAML file"], horizontal=True)
    if source == "From tests_mushra/":
        files = sorted(p.name for p in TESTS_DIR.glob("*.yaml"))
        name = st.selectbox("Test definition", files, index=0 if files else None)
        return listening.load_spec(TESTS_DIR / name) if name else None
    upload = st.file_uploader("Test definition (YAML)", type=["yaml", "yml"])
    if upload is None:
        return None
    document = parse_document(upload.getvalue(), upload.name, "test definition")
    return listening.spec_from_dict(
        document.data,
        base=TESTS_DIR,
        source=upload.name,
        lines=document.lines,
        roots=listening.upload_roots(TESTS_DIR, (DATA_DIR,)),
    )


def create_section() -> None:
    try:
        spec = chosen_spec()
    except EvalkitError as err:
        st.error(str(err))
        return
    if spec is None:
        return
    st.markdown(
        f"**{inert_markdown(spec.title)}** (`{spec.name}`): {len(spec.items)} items × "
        f"{len(spec.conditions)} signals per trial (hidden reference and two anchors included), "
        f"{spec.sample_rate} Hz."
    )
    for warning in spec.warnings:
        st.warning(inert_markdown(warning))
    replace = st.checkbox("Replace an existing test of this name (only if nobody has started it)")
    if st.button("Create test", type="primary"):
        line = st.empty()
        try:
            with st.spinner("Preparing stimuli (runs every codec once; cached afterwards)…"):
                info = listening.create_test(ui.database(), spec, replace=replace, progress=line.caption)
        except EvalkitError as err:
            st.error(str(err))
            return
        st.session_state[PICKED] = info.name
        st.success(f"Created {info.name!r} as a draft: launch it under Run.")


# -- run -----------------------------------------------------------------------------------------


def run_section(info: listening.TestInfo) -> None:
    st.markdown(
        f"**{inert_markdown(info.title)}** · status **{info.status}** · {info.items} items · conditions: "
        + ", ".join(f"`{c}`" for c in info.conditions)
    )
    if info.status == "draft" and st.button("Launch", type="primary"):
        step(listening.launch_test, info.name)
    if info.status == "closed" and st.button("Reopen", help="Listeners resume where they stood; a new open link."):
        step(listening.launch_test, info.name)
    if info.status == "open":
        links_section(info)
    live_progress(info.name)
    if info.status != "closed":
        close_section(info)


def links_section(info: listening.TestInfo) -> None:
    st.subheader("Links")
    if info.open_token:
        st.markdown("**Open link** (anyone with it can take part; each visit is a new participant):")
        st.code(f"{listener_url()}?open={info.open_token}", language=None)
    left, right = st.columns([1, 3])
    count = left.number_input("Invites", min_value=1, max_value=500, value=1, step=1)
    labels = right.text_area("Labels (optional: an email or panel id per line, one invite each)", height=80)
    if st.button("Make invite links"):
        names = [label.strip() for label in labels.replace(",", "\n").splitlines() if label.strip()] or None
        try:
            invites = listening.invite(ui.database(), info.name, int(count), names, base_url=listener_url())
        except EvalkitError as err:
            st.error(str(err))
            return
        st.session_state[INVITES] = {
            info.name: pd.DataFrame([{"participant": i.code, "label": i.label, "link": i.url} for i in invites])
        }
    made = st.session_state.get(INVITES, {}).get(info.name)
    if made is not None:
        st.caption("Copy these now: the links cannot be shown again (only their hashes are stored).")
        st.dataframe(made, hide_index=True)
        st.download_button("Download invite links (CSV)", to_csv(made), f"{info.name}-invites.csv", "text/csv")


@st.fragment(run_every="10s")
def live_progress(name: str) -> None:
    """Progress per listener, refreshed every 10 s while the page is open."""
    st.subheader("Progress")
    summary = listening.progress_summary(ui.database(), name)
    cells = st.columns(4)
    for cell, (label, key) in zip(
        cells,
        [
            ("Participants", "participants"),
            ("Started", "started"),
            ("Completed", "completed"),
            ("Trials rated", "ratings_trials"),
        ],
    ):
        cell.metric(label, summary.get(key, 0))
    frame = listening.progress(ui.database(), name)
    if not frame.empty:
        st.dataframe(frame, hide_index=True, column_order=PROGRESS_COLUMNS)


def close_section(info: listening.TestInfo) -> None:
    with st.expander("Close this test"):
        sure = st.checkbox("Listeners can no longer continue; stored ratings stay.")
        if st.button("Close test", disabled=not sure):
            step(listening.close_test, info.name)


def step(action, name: str) -> None:
    try:
        action(ui.database(), name)
    except EvalkitError as err:
        st.error(str(err))
        return
    st.rerun()


# -- results -------------------------------------------------------------------------------------


def results_section(info: listening.TestInfo) -> None:
    include = st.toggle(
        "Include unfinished sessions", value=False, help="Statistics use completed sessions unless this is on."
    )
    exports_section(info, completed_only=not include)
    listeners_section(info)
    if info.test_type != "mushra":
        typed_results_section(info, completed_only=not include)
        return
    frame, chosen = statistics_ratings(ui.database(), info.name, include_incomplete=include)
    if frame.empty:
        st.info(f"No ratings yet from {chosen}.")
        return
    st.caption(f"{len(frame)} ratings from {frame['participant'].nunique()} listener(s): {chosen}.")
    kept = screening_section(frame, info.name)
    if kept.empty:
        st.info("Post-screening excluded every listener.")
        return
    for warning in degenerate_warnings(kept):
        st.warning(f"Degenerate statistics: {warning}")
    statistics_section(kept, list(info.conditions))


def typed_results_section(info: listening.TestInfo, completed_only: bool) -> None:
    """A test of another type: its own statistics and plots, as its report section shows them."""
    view = statistics_view(ui.database(), info.name, completed_only)
    st.caption(f"{view.title} test. Screening: {view.screening}")
    if view.message:
        st.info(view.message)
    ui.show_statistics(view)


def exports_section(info: listening.TestInfo, completed_only: bool) -> None:
    left, middle, right = st.columns(3)
    left.download_button(
        "Export ratings (CSV)",
        listening.export_ratings_csv(ui.database(), info.name, completed_only=completed_only),
        f"{info.name}-ratings.csv",
        "text/csv",
        type="primary",
    )
    middle.download_button(
        "Export answers (CSV)", to_csv(answers_frame(ui.database(), info.name)), f"{info.name}-answers.csv", "text/csv"
    )
    right.download_button(
        "Export everything (ZIP)",
        export_results(ui.database(), info.name, completed_only=completed_only),
        f"{info.name}-results.zip",
        "application/zip",
    )


def listeners_section(info: listening.TestInfo) -> None:
    with st.expander("Questionnaire answers"):
        answers = answers_frame(ui.database(), info.name)
        if answers.empty:
            st.info("Nobody has started yet.")
        else:
            st.dataframe(answers, hide_index=True)
    with st.expander("Per listener: time, plays and screening"):
        report = listener_report(ui.database(), info.name)
        st.dataframe(
            report,
            hide_index=True,
            column_config={
                c: st.column_config.NumberColumn(format="%.1f")
                for c in ("minutes_on_trials", "median_trial_s", "shortest_trial_s", "plays_per_sample")
            },
        )
        st.download_button("Per-listener report (CSV)", to_csv(report), f"{info.name}-listeners.csv", "text/csv")


def screening_section(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    st.subheader("Post-screening (BS.1534-3)")
    screening = screen(frame, config=test_setup(ui.database(), name).screening)  # the rule the test declares
    st.caption(screening.describe())
    st.dataframe(screening.table, hide_index=True)
    if screening.anchor_items_skipped:
        st.caption(
            "Left out of the anchor rule (over 25 % rate the mid anchor above 90): "
            + ", ".join(screening.anchor_items_skipped)
        )
    return screening.apply(frame) if st.toggle("Apply post-screening", value=True) else frame


def statistics_section(frame: pd.DataFrame, order: list[str]) -> None:
    st.subheader("Per condition")
    summary = condition_summary(frame, order=order)
    st.dataframe(summary, hide_index=True)
    interval = st.radio(
        "Interval",
        ["t", "boot"],
        horizontal=True,
        format_func={"t": "t (all ratings)", "boot": "bootstrap over listeners"}.get,
    )
    left, right = st.columns(2)
    left.pyplot(boxplot(frame, order, "Scores"), clear_figure=False)
    right.pyplot(mean_ci_plot(summary, interval, order, "Mean and 95 % interval"), clear_figure=False)
    comparisons_section(frame, order)
    st.subheader("Repeated-measures ANOVA (condition × item)")
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # degenerate data: warned about above
            st.dataframe(rm_anova(frame), column_config=P_VALUES)
    except ValueError as err:
        st.info(str(err))


def comparisons_section(frame: pd.DataFrame, order: list[str]) -> None:
    st.subheader("Paired comparisons")
    left, right = st.columns(2)
    method = left.radio("Test", ["t", "permutation"], horizontal=True)
    correction = right.radio("Correction", ["holm", "hochberg"], horizontal=True)
    present = [c for c in order if c in set(frame["condition"])]
    st.dataframe(
        paired_comparisons(frame, method, correction, conditions=present), hide_index=True, column_config=P_VALUES
    )
    st.subheader("Permutation test (Attachment 3)")
    a, b = st.columns(2)
    first = a.selectbox("Condition A", present, index=0)
    second = b.selectbox("Condition B", present, index=min(1, len(present) - 1))
    scores = {c: frame.loc[frame["condition"] == c, "score"].to_numpy() for c in (first, second)}
    result = permutation_test(scores[first], scores[second])
    st.markdown(
        f"Mean A − mean B = **{result.statistic:.1f}**, p = **{result.p_value:.4f}** "
        f"({result.n_permutations} re-labellings, pooled)."
    )


# -- the page ------------------------------------------------------------------------------------

st.title("MUSHRA admin")
create, run, results = st.tabs(["Create", "Run", "Results"])
with create:
    create_section()
tests = {info.name: info for info in listening.list_tests(ui.database())}
if tests and st.session_state.get(PICKED) not in tests:
    st.session_state[PICKED] = list(tests)[-1]  # the newest, e.g. the one just created
name = st.sidebar.selectbox("Test", list(tests), key=PICKED, placeholder="no test yet")
for tab, section in ((run, run_section), (results, results_section)):
    with tab:
        if name:
            section(tests[name])
        else:
            st.info("Create a test first (tab Create).")
