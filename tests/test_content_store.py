"""The reference phone store: shared by workers and runs, bounded, never changing a result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import yaml

import evalkit
from evalkit.audio import Audio, resample
from evalkit.cards import find_card
from evalkit.content import Phone, analyze, make_recognizer
from evalkit.content import store as store_module
from evalkit.content.detector import forget_phones, share_reference_phones
from evalkit.content.store import PhoneStore, phone_key
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.harness import roundtrip
from evalkit.store import connect, results_frame


@dataclass
class CountingRecognizer:
    """PocketSphinx, counting the audio it is asked to recognise."""

    inner: object = field(default_factory=lambda: make_recognizer("pocketsphinx"))
    calls: int = 0
    name: str = "pocketsphinx"

    @property
    def version(self) -> str:
        return self.inner.version

    def recognize(self, audio: Audio) -> list[Phone]:
        self.calls += 1
        return self.inner.recognize(audio)


@pytest.fixture
def pair(speech):
    ref = resample(speech, 16000)
    deg = resample(roundtrip(find_card("opus-24k-fec").build(), ref).decoded, 16000)
    return ref.samples[0].astype(np.float64), deg.samples[0].astype(np.float64)[: ref.frames]


@pytest.fixture
def shared(tmp_path):
    share_reference_phones(tmp_path)
    forget_phones()
    yield PhoneStore(tmp_path)
    share_reference_phones(None)
    forget_phones()


def test_a_stored_reference_is_not_recognised_again_and_gives_the_same_report(pair, shared):
    ref, deg = pair
    share_reference_phones(None)
    without = analyze(ref, deg)
    forget_phones()
    share_reference_phones(shared.root.parent)
    counting = CountingRecognizer()
    first = analyze(ref, deg, recognizer=counting)
    forget_phones()  # another worker, or a later run: only the folder is shared
    second = analyze(ref, deg, recognizer=counting)
    assert counting.calls == 3  # reference once, decoded audio twice
    assert first == second
    assert (without.per, without.events, without.judged_fraction) == (first.per, first.events, first.judged_fraction)
    assert len(list(shared.root.rglob("*.json"))) == 1  # the decoded side is not stored


def test_damaged_or_foreign_entries_are_recomputed(pair, shared):
    ref, deg = pair
    counting = CountingRecognizer()
    expected = analyze(ref, deg, recognizer=counting)
    (entry,) = shared.root.rglob("*.json")
    stored = entry.read_text()
    entry_json = json.loads(stored)
    foreign = json.dumps({**entry_json, "key": "0" * 64})
    unknown = json.dumps({**entry_json, "phones": [["XX", 0.1, 0.2, 1.0]] + entry_json["phones"]})
    not_finite = json.dumps({**entry_json, "phones": [["AH", 0.1, float("nan"), 1.0]]})
    for damage in ("{not json", '{"format": 1}', "[]", foreign, unknown, not_finite):
        entry.write_text(damage)
        forget_phones()
        calls = counting.calls
        assert analyze(ref, deg, recognizer=counting) == expected
        assert counting.calls == calls + 2  # both sides recognised again
        assert entry.read_text() == stored  # and the entry repaired


def test_the_store_is_bounded_and_keyed_by_recognizer_version(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "KEEP_PER_SHARD", 3)
    store = PhoneStore(tmp_path)
    keys = [f"ab{i:062x}" for i in range(6)]
    for key in keys:
        store.put(key, [Phone("AH", 0.1, 0.2)])
    assert sorted(p.stem for p in (store.root / "ab").glob("*.json")) == keys[3:]
    assert store.get(keys[-1]) == [Phone("AH", 0.1, 0.2)] and store.get(keys[0]) is None
    assert phone_key("pocketsphinx", "5.1.1 a", "d") != phone_key("pocketsphinx", "5.1.1 b", "d")


def test_a_read_only_store_costs_only_the_reuse(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    store = PhoneStore(blocked)  # its folder cannot be made
    store.put("ab" + "0" * 62, [Phone("AH", 0.1, 0.2)])
    assert store.get("ab" + "0" * 62) is None


@pytest.mark.slow
def test_a_run_shares_references_and_a_rerun_from_the_store_gives_identical_results(tmp_path):
    def experiment(name: str) -> str:
        config = {
            "name": name,
            "dataset": str(DEMO_MANIFEST),
            "limit": 2,
            "workers": 2,
            "codecs": ["reference", "g722-64k", "opus-24k-fec"],
            "metrics": ["phoneme"],
            "database": f"sqlite:///{tmp_path / (name + '.sqlite')}",
            "cache": str(tmp_path / "cache"),
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return str(path)

    def values(name: str):
        frame = results_frame(connect(f"sqlite:///{tmp_path / (name + '.sqlite')}"), name)
        frame = frame[frame.metric.isin(["per", "hallucinations_per_min", "judged_fraction"])]
        return frame.sort_values(["item_id", "codec", "metric"])[["item_id", "codec", "metric", "status", "value"]]

    evalkit.run(experiment("cold"))
    stored = sorted((tmp_path / "cache" / "phones").rglob("*.json"))
    assert len(stored) == 2  # one per item (its three codecs keep its length), not one per codec and item
    evalkit.run(experiment("warm"))  # every reference now comes from the store
    assert sorted((tmp_path / "cache" / "phones").rglob("*.json")) == stored
    cold, warm = values("cold"), values("warm")
    assert (cold.status == "ok").all() and len(cold) == 2 * 3 * 3
    assert cold.reset_index(drop=True).equals(warm.reset_index(drop=True))
