"""Listening tests of every type: definitions, stimuli, the listener's flow, storage, crowdsourcing.

A test has a type (MUSHRA, ACR, DCR, CCR, AB, ABX, BS.1116; evalkit.listening.types), which declares
its definition keys, trial layout, response model, completeness, screening, statistics and report
section. Everything else is shared and lives here: stimulus preparation and blinded delivery,
tokens, roles, resume, the play log and the questionnaire. The listener's web page (web.py,
Starlette) and the admin's Streamlit pages are thin layers over these functions; docs/listening.md
and docs/mushra.md describe the definition keys and the API.
"""

from __future__ import annotations

import importlib

# Loaded on first use, so that the store's tables can take the listener's phases from .flow
# without importing the whole package (and the store again) on the way.
_HOME = {
    "admin": (
        "Invite",
        "TestInfo",
        "close_test",
        "create_test",
        "delete_test",
        "invite",
        "join_open_link",
        "launch_test",
        "list_tests",
        "test_info",
    ),
    "_check": ("upload_roots",),
    "auth": ("check_admin", "hash_password", "verify_password"),
    "flow": ("AccessError", "FlowError", "blockers", "next_allowed"),
    "listener": (
        "AnswerError",
        "accept_consent",
        "confirm_level",
        "current_page",
        "enter",
        "finish_instructions",
        "log_event",
        "record_play",
        "stimulus_audio",
        "submit_qualification",
        "submit_questionnaire",
        "submit_trial",
    ),
    "playlog": ("LimitError",),
    "responses": ("export_ratings_csv", "progress", "progress_summary", "ratings_frame", "responses_frame"),
    "spec": ("TestSpec", "load_spec", "spec_from_dict"),
    "types": ("get_type", "type_names"),
    "pages": ("SCALE", "Page", "TrialPage"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    # definitions and types
    "TestSpec",
    "load_spec",
    "spec_from_dict",
    "upload_roots",
    "get_type",
    "type_names",
    # admin
    "TestInfo",
    "Invite",
    "create_test",
    "launch_test",
    "close_test",
    "delete_test",
    "invite",
    "join_open_link",
    "list_tests",
    "test_info",
    "progress",
    "progress_summary",
    "ratings_frame",
    "responses_frame",
    "export_ratings_csv",
    "hash_password",
    "verify_password",
    "check_admin",
    # listener
    "Page",
    "TrialPage",
    "SCALE",
    "FlowError",
    "AccessError",
    "AnswerError",
    "LimitError",
    "enter",
    "current_page",
    "accept_consent",
    "submit_qualification",
    "finish_instructions",
    "confirm_level",
    "record_play",
    "submit_trial",
    "submit_questionnaire",
    "stimulus_audio",
    "log_event",
    "next_allowed",
    "blockers",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
