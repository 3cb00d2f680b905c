"""Phoneme hallucination checks: alignment, lexicon, spectral evidence, detector, metric, store."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from conftest import white_noise
from scipy.signal import resample_poly
from sqlalchemy import insert, inspect, select

import evalkit.metrics.wrapper as wrapper
from evalkit.audio import Audio, load, resample
from evalkit.cards import find_card
from evalkit.content import (
    RECOGNIZERS,
    Phone,
    PhoneRecognizer,
    align,
    analyze,
    edit_runs,
    make_recognizer,
    phone_error_rate,
)
from evalkit.content.align import align_labels
from evalkit.content.clarity import JUDGE_DB, clarity
from evalkit.content.detector import CHANGE_DB, DISTORTION_DB, MIN_JUDGED, forget_phones
from evalkit.content.lexicon import text_phones
from evalkit.content.spectra import log_mel
from evalkit.content.sphinx import SphinxRecognizer, _pcm16, _phone, _truncate_arpa
from evalkit.content.warp import warp
from evalkit.errors import ConfigError, MetricError
from evalkit.harness import roundtrip
from evalkit.metrics import METRICS, Metric, MetricSpec, evaluate
from evalkit.metrics.content import EVENT_FIELDS, content_events
from evalkit.registry import Registry
from evalkit.store import connect, ensure_run
from evalkit.store.models_content import ContentEvent

needs_flite = pytest.mark.skipif(
    shutil.which("flite") is None, reason="needs Debian flite (scripts/install_system_deps.sh)"
)


def phones(spec: str, step: float = 0.1) -> list[Phone]:
    """'S ER V D' -> consecutive phones, `step` seconds each."""
    return [Phone(label, i * step, (i + 1) * step) for i, label in enumerate(spec.split())]


def samples(audio: Audio) -> np.ndarray:
    return audio.samples[0].astype(np.float64)


def noisy_copy(audio: Audio, snr_db: float, seed: int = 7) -> Audio:
    x = samples(audio)
    noise = samples(white_noise(audio.duration + 1, 16000, seed=seed))[: x.size]
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return audio.with_samples((x + noise)[None, :])


# ---------------------------------------------------------------- alignment


def test_alignment_finds_substitutions_and_their_span():
    ops = align(phones("S ER V D"), phones("S ER F T"))
    assert [op.kind for op in ops] == ["match", "match", "sub", "sub"]
    assert phone_error_rate(ops) == 0.5
    (edit,) = edit_runs(ops)
    assert (edit.start, edit.end) == pytest.approx((0.2, 0.4))
    assert [p.label for p in edit.ref] == ["V", "D"] and [p.label for p in edit.deg] == ["F", "T"]


def test_alignment_counts_insertions_and_deletions():
    ops = align(phones("B AE T"), phones("B AE"))
    assert [op.kind for op in ops] == ["match", "match", "del"] and phone_error_rate(ops) == pytest.approx(1 / 3)
    ops = align(phones("B AE"), phones("B AE T"))
    assert [op.kind for op in ops] == ["match", "match", "ins"] and phone_error_rate(ops) == 0.5


def test_alignment_never_pairs_phones_far_apart_in_time():
    # Same labels, but the decoded "T" sounds a second later: a deletion plus an insertion, not a match.
    ref = [Phone("B", 0.0, 0.1), Phone("T", 0.1, 0.2)]
    deg = [Phone("B", 0.0, 0.1), Phone("T", 1.1, 1.2)]
    assert sorted(op.kind for op in align(ref, deg)) == ["del", "ins", "match"]


def test_alignment_prefers_the_pairing_that_overlaps_in_time():
    ref = [Phone("AH", 0.0, 0.1), Phone("AH", 0.5, 0.6)]
    deg = [Phone("AH", 0.5, 0.6)]
    ops = align(ref, deg)
    assert [op.kind for op in ops] == ["del", "match"] and ops[1].ref is ref[1]


def test_separate_edits_stay_separate_and_empty_inputs_work():
    assert len(edit_runs(align(phones("P AE T S"), phones("B AE T Z")))) == 2
    assert math.isnan(phone_error_rate(align([], phones("A"))))
    assert [op.kind for op in align(phones("AA"), [])] == ["del"]


def test_label_alignment_is_levenshtein():
    pairs = align_labels(list("kitten"), list("sitting"))
    assert sum(i is None or j is None or "kitten"[i] != "sitting"[j] for i, j in pairs) == 3


# ---------------------------------------------------------------- text and recognizer plumbing


def test_text_to_phones_uses_the_shipped_cmu_dictionary():
    assert text_phones("Served, surfed!") == "S ER V D S ER F T".split()
    with pytest.raises(MetricError, match="qzxv"):
        text_phones("the qzxv")
    assert text_phones("the qzxv", skip_unknown=True) == ["DH", "AH"]


def test_recognizers_are_a_registry():
    assert "pocketsphinx" in RECOGNIZERS.names()
    assert isinstance(make_recognizer("pocketsphinx"), PhoneRecognizer)
    with pytest.raises(ConfigError):
        make_recognizer("no-such-recognizer")


def test_arpa_truncation_keeps_a_proper_bigram():
    arpa = (
        "\\data\\\nngram 1=2\nngram 2=1\nngram 3=1\n\n\\1-grams:\n-1.0\tA\t-0.5\n-1.0\tB\t-0.5\n\n"
        "\\2-grams:\n-0.3\tA B\t-0.2\n\n\\3-grams:\n-0.1\tA B A\n\n\\end\\\n"
    )
    out = _truncate_arpa(arpa, 2)
    assert "ngram 3" not in out and "3-grams" not in out and "ngram 2=1" in out
    assert "-1.0\tA\t-0.5" in out and "-0.3\tA B\n" in out


# ---------------------------------------------------------------- spectral evidence


def test_a_second_take_is_followed_not_counted_as_change(speech):
    x = samples(speech)
    take = resample_poly(x, 26, 25) * 10 ** (-2 / 20)  # 4 % slower and 2 dB softer: the same phones
    path = warp(log_mel(x), log_mel(take))
    assert np.percentile(path.change, 95) < CHANGE_DB
    assert path.to_ref_seconds(2.08) == pytest.approx(2.0, abs=0.03)  # decoded times land on the reference's


def test_swapped_content_is_a_large_change(speech):
    x = samples(speech)
    swapped = np.concatenate([x[: x.size // 2], x[: x.size - x.size // 2]])  # the second half replaced
    change = warp(log_mel(x), log_mel(swapped)).change
    half = change.size // 2
    assert np.max(change[: half - 3]) < CHANGE_DB and np.median(change[half + 3 :]) > 2 * CHANGE_DB


def test_a_single_phone_dropped_or_added_needs_a_larger_change():
    """A vowel held shorter in a second take comes out as a dropped phone with a moderate change;
    a changed word substitutes phones."""
    from types import SimpleNamespace

    from evalkit.content.align import Edit
    from evalkit.content.detector import INDEL_CHANGE_DB, _event, _TextVotes

    def event(ref: str, deg: str, change_db: float):
        n = 100
        evidence = SimpleNamespace(change=np.full(n, change_db), clarity=np.full(n, 30.0), distortion=np.zeros(n))
        edit = Edit(0.5, 0.6, tuple(phones(ref)), tuple(phones(deg)))
        return _event(edit, evidence, _TextVotes(None, [], []))

    moderate = (CHANGE_DB + INDEL_CHANGE_DB) / 2
    assert event("AE", "EH", moderate).flagged and event("AH T", "", moderate).flagged
    assert not event("AH", "", moderate).flagged and not event("", "D", moderate).flagged
    assert event("AH", "", INDEL_CHANGE_DB + 0.5).flagged


def test_added_noise_raises_no_flag(speech):
    noisy = samples(speech) + samples(white_noise(speech.duration, 16000, seed=3, amplitude=0.01))
    assert analyze(samples(speech), noisy).hallucinations == 0


# ---------------------------------------------------------------- detector


@pytest.fixture(scope="module")
def flip():
    from evalkit.content.validation import CARRIERS, make_item

    if shutil.which("flite") is None:
        pytest.skip("needs Debian flite (scripts/install_system_deps.sh)")
    return make_item("flite:slt", ("served", "surfed"), CARRIERS[0])


@pytest.fixture(scope="module")
def take():
    """A flip in a second take of the whole sentence: the carrier is not sample-identical."""
    from evalkit.content.validation import CARRIERS, make_take

    if shutil.which("flite") is None:
        pytest.skip("needs Debian flite (scripts/install_system_deps.sh)")
    return make_take("flite:slt", ("served", "surfed"), CARRIERS[0], stretch=1.04, gain_db=-2.0)


def flagged(report) -> list:
    return [e for e in report.events if e.flagged]


@needs_flite
def test_validation_item_is_spliced_where_it_says(flip):
    assert flip.ref.frames == flip.flipped.frames
    differs = np.flatnonzero(flip.ref.samples[0] != flip.flipped.samples[0]) / 16000
    assert flip.flip_start < flip.flip_end
    assert differs.min() <= flip.flip_start + 0.002 and flip.flip_end <= differs.max() + 0.01
    assert differs.max() - differs.min() < 0.5  # one word's slot; the carrier is sample-identical


@needs_flite
@pytest.mark.parametrize("card", ["reference", "opus-32k-hybrid"])
def test_detector_flags_an_injected_flip_where_it_is(flip, card):
    codec = find_card(card).build()
    report = analyze(samples(flip.ref), samples(roundtrip(codec, flip.flipped).decoded), flip.text)
    hits = flagged(report)
    assert len(hits) == 1, report.events
    assert hits[0].start < flip.flip_end + 0.1 and hits[0].end > flip.flip_start - 0.1
    assert hits[0].confidence > 0.9 and hits[0].local_quality > 20 and hits[0].ref_phones != hits[0].deg_phones


@needs_flite
@pytest.mark.parametrize("card", ["reference", "opus-32k-hybrid"])
def test_detector_stays_quiet_on_transparent_codecs(flip, card):
    decoded = roundtrip(find_card(card).build(), flip.ref).decoded
    report = analyze(samples(flip.ref), samples(decoded), flip.text)
    assert flagged(report) == []
    if card == "reference":
        assert report.per == 0.0 and report.events == ()


@needs_flite
@pytest.mark.slow
@pytest.mark.parametrize("card", ["opus-24k-fec", "opus-12k"])
def test_resynthesised_flip_is_found_after_opus(take, card):
    # (A second take without the flip is not always quiet: bench_hallucination counts those flags.)
    report = analyze(samples(take.ref), samples(roundtrip(find_card(card).build(), take.flipped).decoded))
    assert report.judged and any(
        e.start < take.flip_end + 0.1 and e.end > take.flip_start - 0.1 for e in flagged(report)
    ), report.events


def test_noise_raises_per_but_no_hallucination(speech):
    noisy = samples(speech) + samples(white_noise(speech.duration, 16000, seed=4, amplitude=0.05))
    report = analyze(samples(speech), noisy)
    assert report.per > 0.2 and report.hallucinations == 0


def test_a_codec_that_reshapes_every_spectrum_is_not_judged(speech):
    # Codec2 at 1600 bit/s moves every envelope as much as a changed phone would: claiming flags
    # there would be chance, so the rate is withheld.
    decoded = resample(roundtrip(find_card("codec2-1600").build(), speech).decoded, 16000)
    report = analyze(samples(speech), samples(decoded))
    assert report.judged_fraction < MIN_JUDGED and math.isnan(report.hallucinations_per_min)
    assert max(e.distortion_db for e in report.events) > DISTORTION_DB


def test_same_input_gives_the_same_output(speech):
    deg = samples(roundtrip(find_card("opus-12k").build(), speech).decoded)
    forget_phones()
    first = analyze(samples(speech), deg)
    recognizer = make_recognizer("pocketsphinx")
    recognizer.recognize(Audio(deg[::-1].copy(), 16000))  # a decoder used on other audio must not matter
    forget_phones()
    assert analyze(samples(speech), deg) == first


def test_silence_cannot_be_recognized():
    with pytest.raises(MetricError, match="silence"):
        make_recognizer("pocketsphinx").recognize(Audio(np.zeros(16000), 16000))


# ---------------------------------------------------------------- metric and text plumbing


def test_phoneme_metric_is_registered_with_the_judged_fraction_beside_the_rate():
    spec = METRICS.get("phoneme").spec
    assert spec.outputs == ("per", "hallucinations_per_min", "judged_fraction") and not spec.higher_is_better
    assert spec.uses_text and spec.noise_blind == ("hallucinations_per_min",)
    assert spec.direction("judged_fraction") and not spec.direction("per")


def test_phoneme_metric_rows(speech):
    rows = {r.metric: r for r in evaluate("phoneme", speech, speech, text="anything at all")}
    assert rows["per"].value == 0.0 and rows["hallucinations_per_min"].value == 0.0
    assert rows["judged_fraction"].value > 0.9  # clean speech: judged all but its quietest edges
    assert {r.status for r in rows.values()} == {"ok"} and rows["per"].metric_rate == 16000


def test_heavily_degraded_audio_is_not_judged_never_zero(speech):
    deg = noisy_copy(speech, snr_db=0.0)
    rows = {r.metric: r for r in evaluate("phoneme", speech, deg)}
    rate, judged = rows["hallucinations_per_min"], rows["judged_fraction"]
    assert (rate.status, rate.value) == ("skipped", None) and rate.reason.startswith("not judged")
    assert judged.status == "ok" and judged.value < MIN_JUDGED and f"{100 * judged.value:.0f}%" in rate.reason
    report = analyze(samples(speech), samples(deg))
    assert not report.judged and math.isnan(report.hallucinations_per_min)
    assert not any(e.flagged for e in report.events)  # nothing is flagged where nothing can be judged


def test_clarity_reads_noise_from_the_decoded_audio_alone(speech):
    clean = clarity(samples(speech))
    levels = [np.median(clarity(samples(noisy_copy(speech, snr)))) for snr in (30, 10, 0)]
    assert np.median(clean) > levels[0] > levels[1] > levels[2]
    assert levels[0] > JUDGE_DB > levels[2]


def test_text_reaches_only_metrics_that_ask_for_it(monkeypatch, speech):
    registry = Registry("metric", "evalkit.tests.no-plugins")
    monkeypatch.setattr(wrapper, "METRICS", registry)
    fields = dict(
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=None,
        min_duration=0.1,
        package=None,
        description="test metric",
    )
    registry.add(
        "texty",
        Metric(
            MetricSpec(name="texty", outputs=("texty",), uses_text=True, **fields),
            lambda r, d, s, text: float(len(text or "")),
        ),
    )
    registry.add("plain", Metric(MetricSpec(name="plain", outputs=("plain",), **fields), lambda r, d, s: 1.0))
    assert evaluate("texty", speech, speech, text="four")[0].value == 4.0
    assert evaluate("texty", speech, speech)[0].value == 0.0
    assert evaluate("plain", speech, speech, text="ignored")[0].value == 1.0


def test_content_events_rows_fit_the_table(tmp_path, speech):
    deg = speech.with_samples(speech.samples + white_noise(speech.duration, 16000, seed=5, amplitude=0.02).samples)
    events = content_events(speech, deg)
    assert events and all(tuple(e) == EVENT_FIELDS for e in events)
    engine = connect(f"sqlite:///{tmp_path / 'evalkit.db'}")
    assert "content_events" in inspect(engine).get_table_names()
    ensure_run(engine, "exp1", {}, "0.1.0")
    key = dict(run_id="exp1", item_id="a", codec="opus-12k", codec_hash="h1", metric_version="1")
    with engine.begin() as connection:
        connection.execute(insert(ContentEvent), [{**key, **e} for e in events])
    with engine.connect() as connection:
        stored = connection.execute(select(ContentEvent.start, ContentEvent.flagged)).all()
    assert [row.start for row in stored] == [e["start"] for e in events]
    engine.dispose()


@needs_flite
def test_validation_set_round_trips_through_its_manifest(tmp_path, monkeypatch):
    import evalkit.content.validation as validation

    monkeypatch.setattr(validation, "PAIRS", (("served", "surfed"), ("ship", "sip")))
    rows = validation.build_set(tmp_path, ["flite:slt"])
    loaded = validation.load_set(tmp_path)
    assert [r["id"] for r in loaded] == [r["id"] for r in rows] and len(rows) == 4
    assert sorted(r["kind"] for r in rows) == ["spliced", "spliced", "take", "take"]
    for row in loaded:
        if row["kind"] == "take":  # a second take: same words as the reference, other timing and level
            control, ref = load(row["control_path"]), load(row["path"])
            assert control.frames == ref.frames and not np.allclose(control.samples, ref.samples, atol=1e-3)
        assert row["word"] in row["text"] and row["flipped_word"] in row["flipped_text"]
        assert row["flip_start"] < row["flip_end"] <= row["duration"]
        assert validation.located(row["flip_start"] - 0.05, row["flip_start"], row)
        assert not validation.located(row["flip_end"] + 0.2, row["flip_end"] + 0.3, row)


def test_a_kept_decoder_recognizes_as_a_new_one(speech):
    """The decoder is kept between calls with its front end and feature state reset: after other
    audio (noise, reversed speech) it hears exactly what a newly loaded decoder hears."""
    recognizer = SphinxRecognizer()
    clean = Audio(samples(speech), 16000)
    recognizer.recognize(Audio(samples(noisy_copy(speech, 5)), 16000))
    recognizer.recognize(Audio(clean.samples[0][::-1].copy(), 16000))
    decoder = recognizer._decoder()  # newly loaded, never used
    decoder.start_utt()
    decoder.process_raw(_pcm16(clean).tobytes(), full_utt=True)
    decoder.end_utt()
    fresh = [p for p in (_phone(s) for s in decoder.seg()) if p is not None]
    assert recognizer.recognize(clean) == fresh and len(fresh) > 10
