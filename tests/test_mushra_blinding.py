"""The blinding attack: a listener who reads bytes instead of listening, against the demo test over HTTP.

The attacker takes three sessions of the demo test (real codecs) through the real endpoints and
keeps everything the server sent: page JSON, audio bytes and HTTP headers. From sizes, hashes,
headers, ids and identical runs of bytes alone it tries to name, on every trial page, the slider
that is the hidden reference and those that are the two anchors. It must do no better than
chance (1 in 8). Out of scope, because they measure the audio itself, which any blind delivery
must carry (a listener hears the same): comparing sample values with the reference button, and
the compressibility (entropy) of the samples.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict

import numpy as np
import pytest
from listening_helpers import without_server_random
from mushra_demo import make_demo_test
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from evalkit.mushra import web
from evalkit.mushra.playlog import RateLimiter
from evalkit.mushra.tokens import token_hash
from evalkit.store.models_mushra import MushraCondition, MushraParticipant, MushraSession

pytestmark = pytest.mark.slow
SESSIONS = 3
TARGETS = ("reference", "anchor-lp35", "anchor-lp70")
MOST_HITS = 10  # of 21 trials; chance is 21/8 = 2.6, and 11 or more happens by chance with p = 1.2e-5
HEADER = 44  # the WAV header, the same for every stimulus of an item


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Every trial page of three sessions: what the listener's browser received, and (aside) the truth."""
    demo = make_demo_test(tmp_path_factory, "blinding", min_play_seconds=0.01)  # the attack need not listen
    listener = web.ListenerWeb(lambda: demo.engine)
    # The attack reads bytes, not rates: a fast machine must not meet the per-session limits (tested elsewhere).
    listener.play_limit = listener.step_limit = listener.audio_limit = RateLimiter(rate=1000, burst=1000)
    with TestClient(Starlette(routes=listener.routes()), follow_redirects=False) as client:
        trials = [trial for _ in range(SESSIONS) for trial in one_session(client, demo)]
    demo.engine.dispose()
    return trials


def one_session(client, demo) -> list[dict]:
    client.cookies.clear()
    token = client.get(f"/listen?open={demo.info.open_token}").headers["location"].split("t=")[1]
    headers = {web.TOKEN_HEADER: token}
    client.post("/api/listen/enter", json={}, headers=headers)
    for action in ("consent", "instructions"):
        client.post("/api/listen/step", json={"action": action}, headers=headers)
    page = client.post("/api/listen/step", json={"action": "level"}, headers=headers).json()
    truth, trials = conditions_behind(demo, token), []
    while "trial" in page:
        trial = page["trial"]
        served = [(s["id"], client.get(s["url"])) for s in (trial["ref"], *trial["stimuli"])]
        trials.append(
            {
                "page": page,
                "session": token,
                "truth": [truth[trial["phase"]][trial["position"]][i] for i, _ in served[1:]],
                "item": truth[trial["phase"]][trial["position"]]["item"],
                "payloads": [(i, r.content, {k: v for k, v in r.headers.items() if k != "date"}) for i, r in served],
            }
        )
        assert all(response.status_code == 200 for _, response in served)
        for stimulus_id, _ in served:
            played = client.post(
                "/api/listen/play",
                headers=headers,
                json={"phase": trial["phase"], "position": trial["position"], "stimulus": stimulus_id, "offset": 0},
            )
            assert played.status_code == 200, played.text
            time.sleep(0.012)
        ratings = {s["id"]: 50 for s in trial["stimuli"]} if trial["rate"] else {}
        response = client.post(
            "/api/listen/step",
            headers=headers,
            json={"action": "trial", "phase": trial["phase"], "position": trial["position"], "ratings": ratings},
        )
        assert response.status_code == 200, response.text
        page = response.json()
    return trials


def conditions_behind(demo, token) -> dict:
    """The server's secret: for every trial page, opaque id -> condition name (only the judge reads it)."""
    from evalkit.mushra.tokens import trial_ids

    with demo.engine.connect() as connection:
        session = connection.execute(
            select(MushraSession).join(MushraParticipant).where(MushraParticipant.token_hash == token_hash(token))
        ).one()
        names = dict(connection.execute(select(MushraCondition.id, MushraCondition.key)).all())
    found = defaultdict(dict)
    for phase in ("training", "test"):
        for position, trial in enumerate(session.plan[phase]):
            _, ids = trial_ids(session.secret, phase, position, trial["conditions"])
            found[phase][position] = {**{i: names[c] for i, c in zip(ids, trial["conditions"])}, "item": trial["item"]}
    return found


# -- what the attacker measures, per slider of a trial page --------------------------------------


def blocks(data: bytes) -> np.ndarray:
    """64-bit digests of the audio's 24-byte, sample-aligned blocks (eight 24-bit samples).

    Eight samples, not four: in silence only the dither differs, about 8.5 bits a sample, and
    four samples' 34 bits repeat by chance among two million blocks."""
    body = np.frombuffer(data[HEADER : HEADER + (len(data) - HEADER) // 24 * 24], np.uint8).reshape(-1, 24)
    words = body.view("<u4").astype(np.uint64)
    digest = np.zeros(len(words), np.uint64)
    for column, multiplier in enumerate(MIXERS):
        digest ^= words[:, column] * np.uint64(multiplier) + np.uint64(column)
    return digest


MIXERS = (
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
    0xFF51AFD7ED558CCD,
    0xC4CEB9FE1A85EC53,
)


def features(trial: dict) -> dict[str, list[float]]:
    """Each feature's value for every slider (the reference button's payload is the first)."""
    (_, reference, _), sliders = trial["payloads"][0], trial["payloads"][1:]
    shared = set(blocks(reference).tolist())
    digest = lambda data: int(hashlib.sha256(data).hexdigest()[:12], 16)  # noqa: E731
    return {
        "size": [len(data) for _, data, _ in sliders],
        "content-length": [int(headers["content-length"]) for _, _, headers in sliders],
        "http headers": [digest(json.dumps(sorted(headers.items())).encode()) for _, _, headers in sliders],
        "wav header": [digest(data[:HEADER]) for _, data, _ in sliders],
        "sha256": [digest(data) for _, data, _ in sliders],
        "md5": [int(hashlib.md5(data).hexdigest()[:12], 16) for _, data, _ in sliders],
        "first audio bytes": [digest(data[HEADER : HEADER + 4096]) for _, data, _ in sliders],
        "last audio bytes": [digest(data[-4096:]) for _, data, _ in sliders],
        "blocks shared with the reference button": [
            len(shared.intersection(blocks(data).tolist())) for _, data, _ in sliders
        ],
        "id": [int.from_bytes(stimulus.encode(), "big") % 2**61 for stimulus, _, _ in sliders],
        "id length": [len(stimulus) for stimulus, _, _ in sliders],
        "url length": [len(s["url"]) for s in trial["page"]["trial"]["stimuli"]],
    }


# -- the verdict ---------------------------------------------------------------------------------


def test_no_feature_of_the_bytes_names_the_hidden_reference_or_an_anchor(collected):
    assert len(collected) == SESSIONS * 7 and all(len(t["truth"]) == 8 for t in collected)
    table = [features(trial) for trial in collected]
    for name in table[0]:
        for pick in (np.argmax, np.argmin):  # ties go to the first slider, whose condition is shuffled
            guesses = [int(pick(values[name])) for values in table]
            for target in TARGETS:
                hits = sum(trial["truth"][guess] == target for trial, guess in zip(collected, guesses))
                assert hits <= MOST_HITS, (name, pick.__name__, target, hits)


def test_every_stimulus_of_a_page_has_one_size_one_header_and_bytes_of_its_own(collected):
    for trial in collected:
        payloads = trial["payloads"]
        assert len({len(data) for _, data, _ in payloads}) == 1
        assert len({data[:HEADER] for _, data, _ in payloads}) == 1
        assert len({json.dumps(sorted(headers.items())) for _, _, headers in payloads}) == 1
    everything = [data for trial in collected for _, data, _ in trial["payloads"]]
    assert len({hashlib.sha256(data).digest() for data in everything}) == len(everything)  # none twice, anywhere


def test_no_run_of_bytes_repeats_between_stimuli_or_sessions(collected):
    """Within a page (the reference button and the hidden reference included) and for the same item in
    other sessions, no 12-byte block of audio appears twice: nothing to follow a stimulus by."""
    by_item = defaultdict(list)
    for trial in collected:
        by_item[trial["item"]] += [blocks(data) for _, data, _ in trial["payloads"]]
    for item, digests in by_item.items():
        assert len(digests) >= SESSIONS * 9
        every = np.concatenate(digests)
        assert len(np.unique(every)) == len(every), item


def test_the_pages_name_nothing(collected):
    # Whole words, the server's random strings blanked: a leak would stand apart ("amr-nb").
    pages = without_server_random([json.dumps([trial["page"]["trial"] for trial in collected])])[0]
    shown = set(re.split(r"[^a-z0-9]+", pages.lower()))
    for word in ("reference", "anchor", "opus", "amr", "codec2", "g722", "lp35", "lp70", "asterisk", "wav", "flac"):
        assert word not in shown, word
