"""MUSHRA admin (password protected): create and launch tests, invite listeners, watch, export, close, analyse.

The password is checked against a salted hash from the app's secrets (EVALKIT_ADMIN_PASSWORD_HASH in
.streamlit/secrets.toml) or the environment variable of that name; there is no open admin.
"""

from pathlib import Path

import pandas as pd
import streamlit as st
import ui
import yaml

from evalkit import mushra
from evalkit.errors import ConfigError, EvalkitError
from evalkit.mushra.anova import rm_anova
from evalkit.mushra.auth import ENV_VAR
from evalkit.mushra.design import test_setup
from evalkit.mushra.plots import boxplot, mean_ci_plot
from evalkit.mushra.screening import screen
from evalkit.mushra.stats import condition_summary, paired_comparisons, permutation_test

TESTS_DIR = Path(__file__).resolve().parents[2] / "tests_mushra"
SIGNED_IN = "mushra_admin_signed_in"
INVITES = "mushra_admin_invites"
PICKED = "mushra_admin_test"
P_VALUES = {name: st.column_config.NumberColumn(format="%.3g") for name in ("p", "p_adjusted", "p_gg")}
PROGRESS_COLUMNS = ["participant", "phase", "trials_done", "trials_total", "completion_code", "source", "label",
                    "started_at", "updated_at", "completed_at"]


def configured_hash() -> str | None:
    """The hash from the app's secrets, if any; otherwise the library reads the environment."""
    try:
        return st.secrets.get(ENV_VAR) if st.secrets.load_if_toml_exists() else None
    except Exception:  # a malformed secrets file must not open the admin: fall back to the environment
        return None


def sign_in() -> None:
    with st.form("admin-sign-in"):
        password = st.text_input("Admin password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                st.session_state[SIGNED_IN] = mushra.check_admin(password, configured_hash())
            except ConfigError as err:
                st.error(str(err))
                return
            if not st.session_state[SIGNED_IN]:
                st.error("Wrong password.")
            else:
                st.rerun()


def listener_url() -> str:
    """Where listeners open the test: this app's listener page (from the admin's own address)."""
    here = st.context.url or "http://localhost:8501/mushra_admin"
    return here.rsplit("/", 1)[0] + "/mushra_listen"


# -- create --------------------------------------------------------------------------------------


def chosen_spec() -> mushra.TestSpec | None:
    """A definition from tests_mushra/ or an uploaded YAML (its relative paths: from tests_mushra/)."""
    source = st.radio("Definition", ["From tests_mushra/", "Upload a YAML file"], horizontal=True)
    if source == "From tests_mushra/":
        files = sorted(p.name for p in TESTS_DIR.glob("*.yaml"))
        name = st.selectbox("Test definition", files, index=0 if files else None)
        return mushra.load_spec(TESTS_DIR / name) if name else None
    upload = st.file_uploader("Test definition (YAML)", type=["yaml", "yml"])
    if upload is None:
        return None
    try:
        data = yaml.safe_load(upload.getvalue())
    except yaml.YAMLError as err:
        raise ConfigError(f"{upload.name}: not YAML ({err})") from None
    return mushra.spec_from_dict(data, base=TESTS_DIR, source=upload.name)


def create_section() -> None:
    try:
        spec = chosen_spec()
    except EvalkitError as err:
        st.error(str(err))
        return
    if spec is None:
        return
    st.markdown(f"**{spec.title}** (`{spec.name}`): {len(spec.items)} items × {len(spec.conditions)} signals "
                f"per trial (hidden reference and two anchors included), {spec.sample_rate} Hz.")
    for warning in spec.warnings:
        st.warning(warning)
    replace = st.checkbox("Replace an existing test of this name (only if nobody has started it)")
    if st.button("Create test", type="primary"):
        line = st.empty()
        try:
            with st.spinner("Preparing stimuli (runs every codec once; cached afterwards)…"):
                info = mushra.create_test(ui.database(), spec, replace=replace, progress=line.caption)
        except EvalkitError as err:
            st.error(str(err))
            return
        st.session_state[PICKED] = info.name
        st.success(f"Created {info.name!r} as a draft: launch it under Run.")


# -- run -----------------------------------------------------------------------------------------


def run_section(info: mushra.TestInfo) -> None:
    st.markdown(f"**{info.title}** · status **{info.status}** · {info.items} items · conditions: "
                + ", ".join(f"`{c}`" for c in info.conditions))
    if info.status == "draft" and st.button("Launch", type="primary"):
        step(mushra.launch_test, info.name)
    if info.status == "open":
        links_section(info)
    live_progress(info.name)
    if info.status != "closed":
        close_section(info)


def links_section(info: mushra.TestInfo) -> None:
    st.subheader("Links")
    if info.open_token:
        st.markdown("**Open link** (anyone with it can take part; each visit is a new participant):")
        st.code(f"{listener_url()}?open={info.open_token}", language=None)
    left, right = st.columns([1, 3])
    count = left.number_input("Invites", min_value=1, max_value=500, value=1, step=1)
    labels = right.text_input("Labels (optional, comma separated: one invite each)")
    if st.button("Make invite links"):
        names = [label.strip() for label in labels.split(",") if label.strip()] or None
        invites = mushra.invite(ui.database(), info.name, int(count), names, base_url=listener_url())
        st.session_state[INVITES] = {info.name: pd.DataFrame([{"participant": i.code, "link": i.url}
                                                             for i in invites])}
    made = st.session_state.get(INVITES, {}).get(info.name)
    if made is not None:
        st.caption("Copy these now: the links cannot be shown again (only their hashes are stored).")
        st.dataframe(made, hide_index=True)
        st.download_button("Download invite links (CSV)", made.to_csv(index=False), f"{info.name}-invites.csv",
                           "text/csv")


@st.fragment(run_every="10s")
def live_progress(name: str) -> None:
    """Progress per listener, refreshed every 10 s while the page is open."""
    st.subheader("Progress")
    summary = mushra.progress_summary(ui.database(), name)
    cells = st.columns(4)
    for cell, (label, key) in zip(cells, [("Participants", "participants"), ("Started", "started"),
                                          ("Completed", "completed"), ("Trials rated", "ratings_trials")]):
        cell.metric(label, summary.get(key, 0))
    frame = mushra.progress(ui.database(), name)
    if not frame.empty:
        st.dataframe(frame, hide_index=True, column_order=PROGRESS_COLUMNS)


def close_section(info: mushra.TestInfo) -> None:
    with st.expander("Close this test"):
        sure = st.checkbox("Listeners can no longer continue; stored ratings stay.")
        if st.button("Close test", disabled=not sure):
            step(mushra.close_test, info.name)


def step(action, name: str) -> None:
    try:
        action(ui.database(), name)
    except EvalkitError as err:
        st.error(str(err))
        return
    st.rerun()


# -- results -------------------------------------------------------------------------------------


def results_section(info: mushra.TestInfo) -> None:
    completed = st.toggle("Completed sessions only", value=False)
    frame = mushra.ratings_frame(ui.database(), info.name, completed_only=completed)
    st.download_button("Export ratings (CSV)", mushra.export_ratings_csv(ui.database(), info.name,
                       completed_only=completed), f"{info.name}-ratings.csv", "text/csv", type="primary")
    if frame.empty:
        st.info("No ratings yet.")
        return
    st.caption(f"{len(frame)} ratings from {frame['participant'].nunique()} listener(s).")
    kept = screening_section(frame, info.name)
    if kept.empty:
        st.info("Post-screening excluded every listener.")
        return
    statistics_section(kept, list(info.conditions))


def screening_section(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    st.subheader("Post-screening (BS.1534-3)")
    screening = screen(frame, config=test_setup(ui.database(), name).screening)  # the rule the test declares
    st.caption(screening.describe())
    st.dataframe(screening.table, hide_index=True)
    if screening.anchor_items_skipped:
        st.caption("Left out of the anchor rule (over 25 % rate the mid anchor above 90): "
                   + ", ".join(screening.anchor_items_skipped))
    return screening.apply(frame) if st.toggle("Apply post-screening", value=True) else frame


def statistics_section(frame: pd.DataFrame, order: list[str]) -> None:
    st.subheader("Per condition")
    summary = condition_summary(frame, order=order)
    st.dataframe(summary, hide_index=True)
    interval = st.radio("Interval", ["t", "boot"], horizontal=True,
                        format_func={"t": "t (all ratings)", "boot": "bootstrap over listeners"}.get)
    left, right = st.columns(2)
    left.pyplot(boxplot(frame, order, "Scores"), clear_figure=False)
    right.pyplot(mean_ci_plot(summary, interval, order, "Mean and 95 % interval"), clear_figure=False)
    comparisons_section(frame, order)
    st.subheader("Repeated-measures ANOVA (condition × item)")
    try:
        st.dataframe(rm_anova(frame), column_config=P_VALUES)
    except ValueError as err:
        st.info(str(err))


def comparisons_section(frame: pd.DataFrame, order: list[str]) -> None:
    st.subheader("Paired comparisons")
    left, right = st.columns(2)
    method = left.radio("Test", ["t", "permutation"], horizontal=True)
    correction = right.radio("Correction", ["holm", "hochberg"], horizontal=True)
    present = [c for c in order if c in set(frame["condition"])]
    st.dataframe(paired_comparisons(frame, method, correction, conditions=present), hide_index=True,
                 column_config=P_VALUES)
    st.subheader("Permutation test (Attachment 3)")
    a, b = st.columns(2)
    first = a.selectbox("Condition A", present, index=0)
    second = b.selectbox("Condition B", present, index=min(1, len(present) - 1))
    scores = {c: frame.loc[frame["condition"] == c, "score"].to_numpy() for c in (first, second)}
    result = permutation_test(scores[first], scores[second])
    st.markdown(f"Mean A − mean B = **{result.statistic:.1f}**, p = **{result.p_value:.4f}** "
                f"({result.n_permutations} re-labellings, pooled).")


# -- the page ------------------------------------------------------------------------------------

st.title("MUSHRA admin")
if not st.session_state.get(SIGNED_IN):
    sign_in()
    st.stop()
if st.sidebar.button("Sign out"):
    st.session_state[SIGNED_IN] = False
    st.rerun()
create, run, results = st.tabs(["Create", "Run", "Results"])
with create:
    create_section()
tests = {info.name: info for info in mushra.list_tests(ui.database())}
if tests and st.session_state.get(PICKED) not in tests:
    st.session_state[PICKED] = list(tests)[-1]  # the newest, e.g. the one just created
name = st.sidebar.selectbox("Test", list(tests), key=PICKED, placeholder="no test yet")
for tab, section in ((run, run_section), (results, results_section)):
    with tab:
        if name:
            section(tests[name])
        else:
            st.info("Create a test first (tab Create).")
