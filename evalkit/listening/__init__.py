"""Listening tests of every type: definitions, stimuli, the listener's flow, storage, crowdsourcing.

A test has a type (MUSHRA, ACR, DCR, CCR, AB, ABX, BS.1116; evalkit.listening.types), which declares
its definition keys, trial layout, response model, completeness, screening, statistics and report
section. Everything else is shared and lives here: stimulus preparation and blinded delivery,
tokens, roles, resume, the play log and the questionnaire. The listener's web page (web.py,
Starlette) and the admin's Streamlit pages are thin layers over these functions; docs/listening.md
and docs/mushra.md describe the definition keys and the API.
"""

from __future__ import annotations

from .admin import (
    Invite, TestInfo, close_test, create_test, delete_test, invite, join_open_link, launch_test, list_tests, test_info,
)
from .auth import check_admin, hash_password, verify_password
from .flow import AccessError, FlowError, blockers, next_allowed
from .listener import (
    AnswerError, accept_consent, confirm_level, current_page, enter, finish_instructions, log_event, record_play,
    stimulus_audio, submit_qualification, submit_questionnaire, submit_trial,
)
from .playlog import LimitError
from .results import export_ratings_csv, progress, progress_summary, ratings_frame, responses_frame
from .spec import TestSpec, load_spec, spec_from_dict
from ._check import upload_roots
from .types import get_type, type_names
from .views import SCALE, Page, TrialPage

__all__ = [
    # definitions and types
    "TestSpec", "load_spec", "spec_from_dict", "upload_roots", "get_type", "type_names",
    # admin
    "TestInfo", "Invite", "create_test", "launch_test", "close_test", "delete_test", "invite", "join_open_link",
    "list_tests", "test_info", "progress", "progress_summary", "ratings_frame", "responses_frame",
    "export_ratings_csv",
    "hash_password", "verify_password", "check_admin",
    # listener
    "Page", "TrialPage", "SCALE", "FlowError", "AccessError", "AnswerError", "LimitError", "enter", "current_page",
    "accept_consent", "submit_qualification", "finish_instructions", "confirm_level", "record_play", "submit_trial",
    "submit_questionnaire",
    "stimulus_audio", "log_event", "next_allowed", "blockers",
]
