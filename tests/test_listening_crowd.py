"""Crowdsourced listening tests: panel ids from the link, the way back, qualification and environment checks,
time limits, repeat workers and recorded rejections, on an ACR test."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from test_listening_types import create, definition, plan_of, sources  # noqa: F401 (a fixture)

from evalkit import listening
from evalkit.errors import ConfigError
from evalkit.listening.crowd import duplicate_workers, export_rejections, record_rejections, rejections_frame
from evalkit.listening.spec import spec_from_dict
from evalkit.store.models import utcnow
from evalkit.store.models_mushra import MushraParticipant, MushraSession

CROWD = {"panels": {"prolific": {"completion_code": "C0DE1", "screened_out_code": "SCR33N"}}}
QUALIFY = [
    {
        "id": "hearing",
        "text": "Do you have normal hearing?",
        "type": "choice",
        "choices": ["yes", "no"],
        "accept": ["yes"],
    }
]


def crowd_test(engine, sources, tmp_path, **changes):  # noqa: F811 (the fixture's value)
    data = definition("acr", **{"open_link": True, "crowd": CROWD, "qualification": QUALIFY, **changes})
    create(engine, sources, tmp_path, data)
    return listening.test_info(engine, data["name"]).open_token


def arrive(engine, open_token, worker, known=None):
    token = listening.join_open_link(engine, open_token, known, {"PROLIFIC_PID": worker, "STUDY_ID": "s1"})
    listening.enter(engine, token)
    return token


def hear_and_answer(engine, token, page, choice):
    trial, at = page.trial, utcnow()
    listening.record_play(engine, token, trial.phase, trial.position, trial.stimuli[0], 0.0, None, at)
    at += timedelta(seconds=trial.duration + 0.05)
    listening.record_play(engine, token, trial.phase, trial.position, None, 0.0, None, at)
    return listening.submit_trial(engine, token, trial.phase, trial.position, {"choice": choice}, now=at)


def test_a_panel_worker_qualifies_passes_the_headphone_check_and_returns_with_the_panels_code(
    engine, sources, tmp_path
):  # noqa: F811
    open_token = crowd_test(engine, sources, tmp_path, environment={"check": "tones", "trials": 2, "pass": 2})
    token = arrive(engine, open_token, "worker1")
    assert arrive(engine, open_token, "worker1") != token  # another browser: a fresh token ...
    with engine.connect() as connection:
        (panel,) = connection.execute(
            select(MushraParticipant.panel, MushraParticipant.panel_id, MushraParticipant.panel_info)
        ).all()
    assert tuple(panel) == ("prolific", "worker1", {"STUDY_ID": "s1"})  # ... for the same participant
    token = arrive(engine, open_token, "worker1")
    listening.accept_consent(engine, token)
    with pytest.raises(listening.AnswerError):
        listening.submit_qualification(engine, token, {"hearing": "maybe"})
    page = listening.submit_qualification(engine, token, {"hearing": "yes"})
    listening.finish_instructions(engine, token)
    page = listening.confirm_level(engine, token)
    assert page.phase == "environment" and len(page.trial.stimuli) == 1 and page.trial.prompt["question"]
    while page.phase == "environment":
        right = plan_of(engine, page.participant)["environment"][page.trial.position]["answer"]
        page = hear_and_answer(engine, token, page, right)
    while page.phase == "trials":
        page = hear_and_answer(engine, token, page, 3 + page.trial.position % 2)  # not constant
    assert page.phase == "done" and page.completion_code == "C0DE1"
    assert page.redirect == "https://app.prolific.com/submissions/complete?cc=C0DE1"
    with engine.connect() as connection:
        checks = connection.execute(select(MushraSession.checks)).scalar_one()
    assert checks["qualification"]["passed"] and checks["environment_passed"]
    assert [a["ok"] for a in checks["environment"]] == [True, True]  # the hearing-test answers are kept
    assert rejections_frame(engine, "acr-test").empty


def test_failed_qualification_and_failed_headphone_check_screen_out_with_reasons(engine, sources, tmp_path):  # noqa: F811
    open_token = crowd_test(engine, sources, tmp_path, environment={"check": "tones", "trials": 2, "pass": 2})
    token = arrive(engine, open_token, "deaf")
    listening.accept_consent(engine, token)
    page = listening.submit_qualification(engine, token, {"hearing": "no"})
    assert page.phase == "screened_out" and page.completion_code == "SCR33N"
    with pytest.raises(listening.FlowError):
        listening.finish_instructions(engine, token)

    token = arrive(engine, open_token, "speakers")
    listening.accept_consent(engine, token)
    listening.submit_qualification(engine, token, {"hearing": "yes"})
    listening.finish_instructions(engine, token)
    page = listening.confirm_level(engine, token)
    while page.phase == "environment":
        right = plan_of(engine, page.participant)["environment"][page.trial.position]["answer"]
        page = hear_and_answer(engine, token, page, (right % 5) + 1)  # always wrong
    assert page.phase == "screened_out"
    frame = rejections_frame(engine, "acr-test").set_index("panel_id")
    assert set(frame.index) == {"deaf", "speakers"} and (frame["status"] == "screened out").all()
    assert frame.loc["deaf", "rule"] == "qualification" and "hearing" in frame.loc["deaf", "reason"]
    assert frame.loc["speakers", "rule"] == "environment" and "tones" in frame.loc["speakers", "reason"]
    csv = export_rejections(engine, "acr-test")
    assert csv.splitlines()[0].startswith("test,panel,panel_id") and "speakers" in csv and "deaf" in csv


def test_time_limits_repeat_workers_and_panel_only_links(engine, sources, tmp_path):  # noqa: F811
    first = crowd_test(engine, sources, tmp_path, crowd={**CROWD, "time_limit_minutes": 5})
    token = arrive(engine, first, "slow")
    listening.accept_consent(engine, token)
    with engine.begin() as connection:
        connection.execute(update(MushraSession).values(deadline=utcnow() - timedelta(minutes=1)))
    with pytest.raises(listening.FlowError, match="time"):
        listening.submit_qualification(engine, token, {"hearing": "yes"})
    assert listening.current_page(engine, token).phase == "expired"
    assert record_rejections(engine, "acr-test") == 1 and record_rejections(engine, "acr-test") == 0
    assert rejections_frame(engine, "acr-test")["rule"].tolist() == ["time_limit"]

    with pytest.raises(ConfigError, match="panel"):
        listening.join_open_link(engine, first, None, {})  # a panel test wants the worker id
    with pytest.raises(ConfigError, match="PROLIFIC_PID"):
        listening.join_open_link(engine, first, None, {"PROLIFIC_PID": "x'; DROP TABLE--"})

    second = definition("acr", name="acr-two", open_link=True, crowd={**CROWD, "exclusive_with": ["acr-test"]})
    create(engine, sources, tmp_path / "two", second)
    again = listening.test_info(engine, "acr-two").open_token
    with pytest.raises(ConfigError, match="already taken part"):
        arrive(engine, again, "slow")
    arrive(engine, again, "fresh")
    assert duplicate_workers(engine).empty
    third = definition("acr", name="acr-three", open_link=True, crowd=CROWD)
    create(engine, sources, tmp_path / "three", third)
    arrive(engine, listening.test_info(engine, "acr-three").open_token, "slow")  # not exclusive: allowed, but seen
    repeated = duplicate_workers(engine)
    assert repeated.to_dict("records") == [
        {"panel": "prolific", "panel_id": "slow", "tests": 2, "names": "acr-test, acr-three"}
    ]


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"crowd": {"panels": {"mypanel": {}}}}, ["crowd.panels.mypanel.id_param"]),
        ({"crowd": {"panels": {"prolific": {"redirect": "javascript:alert(1)"}}}}, ["redirect", "http"]),
        ({"crowd": {"time_limit_minutes": 0}}, ["crowd.time_limit_minutes"]),
        (
            {"qualification": [{"id": "q", "text": "Q?", "type": "choice", "choices": ["a", "b"], "accept": ["c"]}]},
            ["qualification[0].accept"],
        ),
        ({"environment": {"check": "loudspeaker"}}, ["environment.check"]),
        ({"environment": {"check": "tones", "trials": 2, "pass": 3}}, ["environment.pass"]),
    ],
)
def test_bad_crowd_definitions_name_the_key(sources, changes, fragments):  # noqa: F811
    with pytest.raises(ConfigError) as info:
        spec_from_dict(definition("acr", **changes), base=sources, source="t.yaml")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
