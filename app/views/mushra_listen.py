"""MUSHRA listener: the one page a listener sees, showing whichever step they stand on.

The link carries `?t=<token>` (an invite) or `?open=<token>` (an open link, which makes a new
participant and moves to their own `?t=`). Where the listener stands lives in the database
(evalkit.mushra), so closing the tab and opening the link again resumes exactly there.
"""

import streamlit as st
import ui
from mushra_player import level_player, trial_player

from evalkit import mushra
from evalkit.errors import EvalkitError

FLASH, JOINED, ENTERED = "mushra_listen_flash", "mushra_listen_joined", "mushra_listen_entered"
# Listeners see the test only (no navigation to results or admin pages), in one centred column.
LISTENER_STYLE = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stSidebarNav"] { display: none !important; }
[data-testid="stMainBlockContainer"] { max-width: 1100px; margin: 0 auto; }
</style>"""


def token() -> str | None:
    """The listener's token; an open link first becomes a personal one (the URL then resumes)."""
    if "open" in st.query_params:
        joined = st.session_state.setdefault(JOINED, {})
        link = st.query_params["open"]
        if link not in joined:  # once per browser session: Back to the open link adds no listener
            joined[link] = mushra.join_open_link(ui.database(), link)
        st.query_params.clear()
        st.query_params["t"] = joined[link]
    return st.query_params.get("t")


def act(step, *args) -> None:
    """Take one step of the flow, then show the page the listener stands on next."""
    try:
        step(ui.database(), *args)
    except mushra.AnswerError as err:
        st.session_state[FLASH] = err.problems
    except EvalkitError as err:
        st.session_state[FLASH] = str(err)
    st.rerun()


def current(tok: str) -> mushra.Page:
    """The listener's page: `enter` once per browser session (logs a resume), then read only."""
    if st.session_state.get(ENTERED) != tok:
        page = mushra.enter(ui.database(), tok)
        st.session_state[ENTERED] = tok
        return page
    return mushra.current_page(ui.database(), tok)


def header(page: mushra.Page) -> dict | None:
    """Title and the last step's message; questionnaire problems (per question) are returned."""
    st.title(page.title)
    flash = st.session_state.pop(FLASH, None)
    if isinstance(flash, str):
        st.warning(flash)
    return flash if isinstance(flash, dict) else None


def consent(tok: str, page: mushra.Page) -> None:
    st.subheader("Before you start")
    st.markdown(page.text)
    if st.button("I agree, continue", type="primary"):
        act(mushra.accept_consent, tok)


def instructions(tok: str, page: mushra.Page) -> None:
    st.subheader("How the test works")
    st.markdown(page.text)
    st.markdown("**On each page** press *Reference* and every numbered sample (all play in sync; switching "
                "is seamless), then move each sample's slider. A slider works while its sample is selected. "
                "Drag on the waveform to repeat a short part.\n\n"
                "**Keys:** `R` reference · `1`–`9` samples · `Space` play/pause · `↑`/`↓` adjust the rating "
                "(`Shift` for steps of 10) · `N` next page.")
    if st.button("Start", type="primary"):
        act(mushra.finish_instructions, tok)


def level_check(tok: str, page: mushra.Page) -> None:
    st.subheader("Set your listening level")
    st.markdown("Put on your headphones, play the signal and set your volume to a comfortable level. "
                "Keep it there for the rest of the test.")
    reported = level_player(ui.database(), tok, page)
    if "confirm" in reported:
        act(mushra.confirm_level, tok, reported["confirm"])
    if "error" in reported:
        act(mushra.log_event, tok, "client_error", reported["error"])


def trial(tok: str, page: mushra.Page) -> None:
    trial_page = page.trial
    if trial_page.phase == "training":
        st.subheader(f"Training {trial_page.position + 1} of {trial_page.count}")
        st.caption("Get to know the samples and the scale. Ratings on training pages are not kept.")
    else:
        st.progress(page.done / max(page.total, 1), text=f"Page {trial_page.position + 1} of {trial_page.count}")
    reported = trial_player(ui.database(), tok, trial_page)
    if "submit" in reported:
        sent = reported["submit"]
        act(mushra.submit_trial, tok, trial_page.phase, trial_page.position, sent.get("ratings", {}),
            sent.get("plays", []), sent.get("client"))
    if "error" in reported:
        act(mushra.log_event, tok, "client_error", reported["error"])


def questionnaire(tok: str, page: mushra.Page, problems: dict | None) -> None:
    st.subheader("A few questions")
    with st.form("questionnaire"):
        answers = {q["id"]: ask(q, (problems or {}).get(q["id"])) for q in page.questions}
        if st.form_submit_button("Finish", type="primary"):
            act(mushra.submit_questionnaire, tok, answers)


def ask(question: dict, problem: str | None):
    """One questionnaire widget; its answer goes to the library as typed (it checks every rule)."""
    label, key = question["text"], f"q-{question['id']}"
    if question["type"] == "choice":
        answer = st.radio(label, question["choices"], index=None, key=key)
    elif question["type"] == "number":
        answer = st.number_input(label, question.get("min"), question.get("max"), value=None, step=1, key=key)
    else:
        answer = st.text_area(label, key=key) or None
    if problem:
        st.error(problem)
    return answer


def done(page: mushra.Page) -> None:
    st.success("Thank you! Your ratings are saved.")
    st.markdown("Your completion code:")
    st.code(page.completion_code, language=None)
    st.caption(f"Participant {page.participant} · you can close this tab.")


# Wide, then narrowed by LISTENER_STYLE: the same layout whether or not the entry script ran first.
st.set_page_config(page_title="Listening test", layout="wide")
st.html(LISTENER_STYLE)
try:
    tok = token()
    page = current(tok) if tok else None
except EvalkitError as err:
    st.error(str(err))
    st.stop()
if page is None:
    st.title("Listening test")
    st.info("Open the link you were given to take part (it ends in ?t=… or ?open=…).")
    st.stop()
flash = header(page)
if page.phase == "consent":
    consent(tok, page)
elif page.phase == "instructions":
    instructions(tok, page)
elif page.phase == "level_check":
    level_check(tok, page)
elif page.phase in ("training", "trials"):
    trial(tok, page)
elif page.phase == "questionnaire":
    questionnaire(tok, page, flash)
else:
    done(page)
