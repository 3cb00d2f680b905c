"""MUSHRA listening tests (ITU-R BS.1534-3): definitions, stimuli, listener flow, storage, statistics.

The listener's web page (web.py, Starlette) and the admin's Streamlit pages are thin layers over these
functions; docs/mushra.md describes the definition keys and the API. The analysis and reporting modules
are imported on their own: screening, stats, anova, mixed, omnibus, design, plots, checks, listeners;
ratings imports and exports ratings (docs/ratings.md).
"""

from __future__ import annotations

from .admin import (
    Invite, TestInfo, close_test, create_test, delete_test, invite, join_open_link, launch_test, list_tests, test_info,
)
from .auth import check_admin, hash_password, verify_password
from .flow import AccessError, FlowError, blockers, next_allowed
from .listener import (
    AnswerError, accept_consent, confirm_level, current_page, enter, finish_instructions, log_event, record_play,
    stimulus_audio, submit_questionnaire, submit_trial,
)
from .playlog import LimitError
from .results import export_ratings_csv, progress, progress_summary, ratings_frame
from .spec import TestSpec, load_spec, spec_from_dict
from .views import SCALE, Page, TrialPage

__all__ = [
    # definitions
    "TestSpec", "load_spec", "spec_from_dict",
    # admin
    "TestInfo", "Invite", "create_test", "launch_test", "close_test", "delete_test", "invite", "join_open_link",
    "list_tests", "test_info", "progress", "progress_summary", "ratings_frame", "export_ratings_csv",
    "hash_password", "verify_password", "check_admin",
    # listener
    "Page", "TrialPage", "SCALE", "FlowError", "AccessError", "AnswerError", "LimitError", "enter", "current_page",
    "accept_consent", "finish_instructions", "confirm_level", "record_play", "submit_trial", "submit_questionnaire",
    "stimulus_audio", "log_event", "next_allowed", "blockers",
]
