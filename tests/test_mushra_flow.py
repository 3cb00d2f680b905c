"""The listener state machine, the "Next" rule, randomisation and opaque ids, without a database."""

from __future__ import annotations

from collections import Counter

import pytest

from evalkit.mushra.flow import FlowError, State, advance, blockers, next_allowed, require
from evalkit.mushra.playlog import (
    MIN_LOOP_S,
    LimitError,
    PlayEvent,
    RateLimiter,
    check_loop,
    check_offset,
    heard_and_needed,
    limited_json,
    spans,
)
from evalkit.mushra.randomize import make_plan, session_seed, slider_order, trial_order, williams_square
from evalkit.mushra.tokens import level_id, new_secret, resolve_stimulus, trial_ids

PLAN = {
    "training": [{"item": 1, "conditions": [3, 2]}],
    "test": [{"item": 1, "conditions": [2, 3]}, {"item": 2, "conditions": [3, 2]}],
    "reference": 2,
    "level_item": 1,
    "level_condition": 2,
}


def walk(plan, has_questionnaire):
    state, seen = State(), []
    while state.phase != "done":
        seen.append((state.phase, state.position))
        state = advance(state, plan, {"questionnaire"} if has_questionnaire else ())
    return seen


def test_full_path_in_order():
    assert walk(PLAN, True) == [
        ("consent", 0),
        ("instructions", 0),
        ("level_check", 0),
        ("training", 0),
        ("trials", 0),
        ("trials", 1),
        ("questionnaire", 0),
    ]


def test_no_questionnaire_and_no_training_are_skipped():
    plan = {**PLAN, "training": []}
    assert walk(plan, False)[-3:] == [("level_check", 0), ("trials", 0), ("trials", 1)]


def test_done_cannot_advance_and_stale_steps_are_refused():
    with pytest.raises(FlowError):
        advance(State("done"), PLAN, {"questionnaire"})
    require(State("trials", 1), "trials", 1)
    with pytest.raises(FlowError, match="out of date"):
        require(State("trials", 1), "trials", 0)
    with pytest.raises(FlowError, match="out of date"):
        require(State("questionnaire"), "consent")


# -- the "Next" predicate --------------------------------------------------------------


def heard(**seconds):
    return {s: (h, 1.0) for s, h in seconds.items()}


def test_next_needs_every_stimulus_played_and_rated():
    ids = ["x", "y", "z"]
    played = heard(x=2.0, y=2.0, z=2.0)
    ratings = {"x": 0, "y": 55.5, "z": 100}
    assert next_allowed(ids, played, ratings)
    assert blockers(ids, heard(x=2.0, y=2.0), ratings) == [(2, "not played")]
    assert blockers(ids, {**played, "z": (0.4, 1.0)}, ratings) == [(2, "played 0.4 s of 1.0 s")]
    assert blockers(ids, played, {"x": 0, "y": 55.5}) == [(2, "not rated")]
    assert blockers(ids, played, {**ratings, "y": None}) == [(1, "not rated")]  # sliders start unrated
    assert blockers(ids, played, {**ratings, "z": 101}) == [(2, "not rated")]
    assert blockers(ids, played, {**ratings, "z": float("nan")}) == [(2, "not rated")]
    assert blockers(ids, played, {**ratings, "z": True}) == [(2, "not rated")]
    assert next_allowed(ids, played, {}, require_ratings=False)  # training: plays only


# -- the server's play log ------------------------------------------------------------


def test_plays_last_until_the_next_event_and_add_up():
    events = [PlayEvent("x", 10.0), PlayEvent("y", 10.6), PlayEvent("x", 11.0), PlayEvent(None, 11.5)]
    found = heard_and_needed(events, until=20.0, duration=5.0, looping=True)
    assert found == {"x": (pytest.approx(1.1), 1.0), "y": (pytest.approx(0.4), 1.0)}
    assert spans(events, 20.0, 5.0, True) == pytest.approx([0.6, 0.4, 0.5, 0.0])


def test_an_open_play_counts_until_now_and_a_stop_alone_counts_nothing():
    assert heard_and_needed([PlayEvent("x", 10.0)], until=10.7, duration=5.0, looping=True) == {
        "x": (pytest.approx(0.7), 1.0)
    }
    assert heard_and_needed([PlayEvent(None, 10.0)], until=99.0, duration=5.0, looping=True) == {}
    assert heard_and_needed([], until=99.0, duration=5.0, looping=True) == {}


def test_without_looping_a_play_ends_with_the_stimulus():
    events = [PlayEvent("x", 0.0, offset=2.5)]
    assert heard_and_needed(events, until=60.0, duration=3.0, looping=False)["x"][0] == pytest.approx(0.5)
    assert heard_and_needed(events, until=60.0, duration=3.0, looping=True)["x"][0] == pytest.approx(60.0)


def test_the_need_is_the_minimum_or_the_loop_region_if_shorter():
    loop = [PlayEvent("x", 0.0, 0.0, (1.0, 1.6)), PlayEvent("y", 0.7, 0.0, (0.0, 0.2))]
    found = heard_and_needed(loop, until=1.5, duration=3.0, looping=True, min_seconds=1.0)
    assert found["x"] == (pytest.approx(0.7), pytest.approx(0.6)) and next_allowed(["x"], found, {}, False)
    assert found["y"][1] == MIN_LOOP_S  # a region under the page's least loop counts as the least
    assert heard_and_needed([PlayEvent("x", 0.0)], 1.0, duration=0.8, looping=True, min_seconds=1.0)["x"][1] == 0.8
    assert heard_and_needed([PlayEvent("x", 0.0, 0.0, (0, 0.6))], 1.0, 3.0, looping=False)["x"][1] == 1.0


def test_loop_regions_and_offsets_are_checked():
    assert check_loop(None, 3.0) is None
    assert check_loop([0.5, 1.2], 3.0) == (0.5, 1.2)
    for bad in ([0.5], [1.0, 1.2], [-1, 1], [0, 4], ["a", 1], [0, float("nan")], "0-1"):
        with pytest.raises(FlowError):
            check_loop(bad, 3.0)
    assert check_offset(2, 3.0) == 2.0
    for bad in (-0.1, 3.5, True, None, "1"):
        with pytest.raises(FlowError):
            check_offset(bad, 3.0)


def test_limited_json_refuses_what_is_too_large_or_not_json():
    assert limited_json({"a": [1, 2]}, "x", 100) == {"a": [1, 2]}
    with pytest.raises(LimitError, match="too large"):
        limited_json({"a": "b" * 200}, "the record", 100)
    with pytest.raises(FlowError, match="not JSON"):
        limited_json({"a": float("nan")}, "the record", 100)


def test_rate_limiter_allows_bursts_then_the_rate_and_stays_bounded():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, keys=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert limiter.allow("a") and not limiter.allow("a")
    with pytest.raises(LimitError, match="too many plays"):
        limiter.check("a", "plays")
    limiter.allow("b")
    limiter.allow("c")
    assert len(limiter) == 2 and limiter.allow("a")  # "a" was forgotten: a fresh bucket


# -- randomisation ---------------------------------------------------------------------


@pytest.mark.parametrize("n", range(2, 10))
def test_williams_square_is_balanced(n):
    rows = williams_square(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    positions = Counter((row[p], p) for row in rows for p in range(n))
    follows = Counter((row[p], row[p + 1]) for row in rows for p in range(n - 1))
    assert set(positions.values()) == {len(rows) // n} and len(positions) == n * n
    assert set(follows.values()) == {len(rows) // n} and len(follows) == n * (n - 1)


def test_trial_orders_are_balanced_across_listeners_and_reproducible():
    n, listeners = 6, 12
    orders = [trial_order(42, k, n) for k in range(listeners)]
    assert orders == [trial_order(42, k, n) for k in range(listeners)]
    assert all(sorted(order) == list(range(n)) for order in orders)
    first = Counter(order[0] for order in orders)
    assert set(first.values()) == {listeners // n}  # every item opens equally often
    assert orders != [trial_order(43, k, n) for k in range(listeners)]  # the test seed relabels


def test_random_trial_order_and_slider_orders_are_seeded():
    assert trial_order(1, 5, 8, "random") == trial_order(1, 5, 8, "random")
    assert slider_order(7, "test", 0, 10) == slider_order(7, "test", 0, 10)
    assert len({tuple(slider_order(7, "test", p, 10)) for p in range(20)}) > 15  # differs per trial
    counts = Counter(slider_order(s, "test", 0, 4).index(0) for s in range(4000))  # condition 0's slider
    assert all(abs(c - 1000) < 120 for c in counts.values())


def test_plan_is_a_function_of_seed_and_ordinal():
    plan = make_plan(99, 3, [10, 11, 12, 13, 14], [10], [1, 2, 3, 4])
    assert plan == make_plan(99, 3, [10, 11, 12, 13, 14], [10], [1, 2, 3, 4])
    assert plan["seed"] == session_seed(99, 3) and plan["seed"] != session_seed(99, 4)
    assert sorted(t["item"] for t in plan["test"]) == [10, 11, 12, 13, 14]
    assert [t["item"] for t in plan["training"]] == [10]
    assert all(sorted(t["conditions"]) == [1, 2, 3, 4] for t in plan["test"] + plan["training"])


# -- opaque ids -------------------------------------------------------------------------


def test_opaque_ids_are_per_session_per_trial_and_resolvable():
    secret, other = new_secret(), new_secret()
    reference, ids = trial_ids(secret, "test", 0, [2, 3])
    assert len(set(ids) | {reference}) == 3
    assert set(ids).isdisjoint(trial_ids(other, "test", 0, [2, 3])[1])
    assert set(ids).isdisjoint(trial_ids(secret, "test", 1, [2, 3])[1])  # cannot follow a condition across trials
    assert all(len(i) == 22 for i in ids)
    assert resolve_stimulus(secret, PLAN, ids[1]) == (1, 3)
    assert resolve_stimulus(secret, PLAN, reference) == (1, 2)
    assert resolve_stimulus(secret, PLAN, level_id(secret)) == (1, 2)
    assert resolve_stimulus(other, PLAN, ids[1]) is None
    assert resolve_stimulus(secret, PLAN, ids[1], only=("test", 1)) is None  # not on that page


# -- admin password ---------------------------------------------------------------------


def test_admin_password_hashing(monkeypatch):
    from evalkit.errors import ConfigError
    from evalkit.mushra.auth import ENV_VAR, check_admin, hash_password, verify_password

    stored = hash_password("correct horse", n=2**10)  # small n: quick test
    assert stored.startswith("scrypt$1024$") and "correct horse" not in stored
    assert stored != hash_password("correct horse", n=2**10)  # salted
    assert verify_password("correct horse", stored) and not verify_password("wrong horse", stored)
    with pytest.raises(ConfigError, match="malformed"):
        verify_password("x", "md5$abc")
    with pytest.raises(ConfigError, match="at least 8"):
        hash_password("short")
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match=ENV_VAR):
        check_admin("correct horse")
    monkeypatch.setenv(ENV_VAR, stored)
    assert check_admin("correct horse") and not check_admin("nope")
    assert check_admin("correct horse", configured=stored)
