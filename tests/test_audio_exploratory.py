"""Audio as users hand it over (odd WAV headers, constant signals, ...), through loading and the metrics."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import DEMO

import evalkit
import evalkit.audio as audio_module
from evalkit.alignment import estimate_lag
from evalkit.audio import Audio, downmix, load, save
from evalkit.cache import file_digest
from evalkit.cards import find_card
from evalkit.cli import main
from evalkit.conditions import DecodedCondition
from evalkit.datasets import load_dataset
from evalkit.errors import AudioError, ConfigError
from evalkit.harness import roundtrip
from evalkit.metrics import evaluate, wrapper
from evalkit.signals import add_noise, white_noise


def _constant(like, level: float = 0.3):
    return like.with_samples(np.full_like(like.samples, level))


@pytest.mark.parametrize("name", ["pesq_wb", "stoi", "si_sdr", "dnsmos"])
def test_a_constant_degraded_signal_fails_as_such_instead_of_being_scored(name, speech):
    rows = evaluate(name, speech, _constant(speech))
    assert {(r.status, r.reason) for r in rows} == {
        ("failed", "degraded audio is constant (DC offset 0.3, nothing varies)")
    }


def test_a_constant_reference_fails_as_such_instead_of_as_an_unreliable_alignment(speech):
    (row,) = evaluate("stoi", _constant(speech, -0.5), speech)
    assert (row.status, row.reason) == ("failed", "reference audio is constant (DC offset -0.5, nothing varies)")


def test_a_constant_signal_carries_no_lag(speech):
    assert estimate_lag(speech, _constant(speech), 4000) is None


def test_speech_with_a_dc_offset_is_still_scored(speech):
    (row,) = evaluate("stoi", speech, speech.with_samples(speech.samples + 0.2))
    assert row.status == "ok" and row.value > 0.9


def test_a_wav_whose_header_was_never_finished_says_how_to_recover_it(tmp_path, speech):
    path = tmp_path / "streamed.wav"
    sf.write(path, speech.samples.T, speech.sample_rate, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    start = data.find(b"data")
    data[4:8] = data[start + 4 : start + 8] = struct.pack("<I", 0)  # what a writer that was never closed leaves
    path.write_bytes(bytes(data))
    with pytest.raises(
        AudioError, match=r"streamed\.wav: the WAV header declares no audio.*ffmpeg -i in\.wav out\.wav"
    ):
        load(path)


def test_a_wav_without_samples_still_says_so(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: holds no audio frames$"):
        load(path)


def _stereo(audio, right):
    return audio.with_samples(np.concatenate([audio.samples, right], axis=0))


def test_downmixing_channels_that_cancel_is_an_error_naming_the_item(speech):
    inverted = _stereo(speech, -speech.samples)
    with pytest.raises(AudioError, match=r"^item-7: its 2 channels cancel when averaged \(the mix is silent"):
        downmix(Audio(inverted.samples, inverted.sample_rate, "item-7"))
    rows = evaluate("stoi", speech, inverted, downmix=True)
    assert rows[0].status == "failed" and "channels cancel when averaged" in rows[0].reason


@pytest.mark.parametrize("right", ["same", "silent", "noise"])
def test_ordinary_stereo_still_downmixes(speech, right):
    other = {"same": speech.samples, "silent": 0 * speech.samples, "noise": white_noise(3.0, seed=2).samples}[right]
    mixed = downmix(_stereo(speech, other))
    assert mixed.channels == 1 and mixed.frames == speech.frames


def test_a_pair_too_long_to_hold_fails_before_alignment(monkeypatch, speech):
    monkeypatch.setattr(audio_module, "MAX_SCORED_FRAMES", 2 * speech.sample_rate)
    monkeypatch.setattr(wrapper, "align_pair", _never)
    for ref, deg, role in ((speech, speech, "reference"), (None, speech, "degraded")):
        rows = evaluate("si_sdr" if ref is not None else "dnsmos", ref, deg)
        assert {r.status for r in rows} == {"failed"}
        assert rows[0].reason.startswith(f"{role} audio is 0.1 min long, more than the 0.0 min (32000 samples")


def test_a_run_fails_an_item_too_long_to_score_and_goes_on(monkeypatch, tmp_path, speech):
    data = tmp_path / "data"
    data.mkdir()
    save(speech, data / "long.wav")
    save(speech.with_samples(speech.samples[:, : speech.sample_rate]), data / "short.wav")
    monkeypatch.setattr(audio_module, "MAX_SCORED_FRAMES", 2 * speech.sample_rate)
    config = {"name": "long", "dataset": str(data), "workers": 0, "codecs": ["reference"], "metrics": ["si_sdr"]}
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump({**config, "database": f"sqlite:///{tmp_path / 'db.sqlite'}", "cache": str(tmp_path / "c")})
    )
    rows = evalkit.run(path).set_index(["item_id", "metric"])
    assert rows.loc[("short", "si_sdr"), "status"] == "ok"
    assert rows.loc[("long", "si_sdr"), "status"] == "failed"
    assert "cut it into shorter items" in rows.loc[("long", "si_sdr"), "reason"]


def _never(*args, **kwargs):
    raise AssertionError("aligned a pair that was too long to score")


def test_a_decoded_file_of_inverted_polarity_is_aligned_sample_exactly():
    # This voice's high-passed waveform has a side lobe of 0.57 at 13 samples, which the flipped
    # file's peak search took (SI-SDR -23 dB instead of +14 dB).
    speech = _slt()
    decoded = add_noise(speech, 20.0, seed=3)
    late = decoded.with_samples(np.pad(decoded.samples, ((0, 0), (37, 0)))[:, : speech.frames])
    assert estimate_lag(speech, late.with_samples(-late.samples), 4000).lag == 37
    (kept,), (flipped,) = evaluate("si_sdr", speech, late), evaluate("si_sdr", speech, late.with_samples(-late.samples))
    assert (flipped.lag, flipped.status) == (37, "ok") and flipped.value == pytest.approx(kept.value, abs=1e-6)


def test_a_vocoded_signal_is_not_mistaken_for_an_inverted_one(speech):
    unrelated = white_noise(3.0, seed=4)  # no waveform in common, inverted or not
    assert estimate_lag(speech, unrelated, 4000).method == "envelope"


def test_a_round_trip_of_a_file_too_long_to_hold_is_refused(monkeypatch, speech):
    monkeypatch.setattr(audio_module, "MAX_SCORED_FRAMES", 2 * speech.sample_rate)
    codec = find_card("reference").build(speech.sample_rate)
    with pytest.raises(AudioError, match=r"is 0\.1 min long, .*cut it into shorter items"):
        roundtrip(codec, speech)


def test_score_of_an_mp3_says_to_convert_it_not_that_no_folder_exists(tmp_path, capsys, speech):
    save(speech, tmp_path / "ref.wav")
    (tmp_path / "deg.mp3").write_bytes(b"ID3" + bytes(200))
    assert main(["score", "--ref", str(tmp_path / "ref.wav"), "--deg", str(tmp_path / "deg.mp3")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deg.mp3: evalkit reads decoded audio as .wav, .flac, .ogg, not .mp3" in err[0], err
    assert "ffmpeg -i deg.mp3 deg.wav" in err[0]


def test_a_file_with_too_many_channels_is_named_without_array_hints(tmp_path):
    path = tmp_path / "wide.wav"
    sf.write(path, np.zeros((100, 65)), 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"wide\.wav: has 65 channels, more than the 64 evalkit reads$"):
        load(path)


def test_a_decoded_float_file_beyond_full_scale_is_scored_with_a_warning(tmp_path, capsys, speech):
    save(speech, tmp_path / "ref.wav")
    save(speech.with_samples(speech.samples * 4), tmp_path / "deg.wav", subtype="FLOAT")
    out = tmp_path / "rows.csv"
    args = ["score", "--ref", str(tmp_path / "ref.wav"), "--deg", str(tmp_path / "deg.wav"), "--metrics", "si_sdr"]
    assert main([*args, "--workers", "0", "-o", str(out)]) == 0
    rows = pd.read_csv(out).set_index("metric")
    assert rows.loc["si_sdr", "status"] == "ok"
    assert rows.loc["si_sdr", "reason"].startswith("decoded file beyond full scale (peak ")
    assert "deg: decoded files hold float samples beyond full scale" in capsys.readouterr().err


def test_a_degenerate_reference_says_it_is_the_reference(tmp_path, speech):
    data = tmp_path / "data"
    data.mkdir()
    save(speech.with_samples(np.full_like(speech.samples, 0.25)), data / "dc.wav")
    config = {"name": "dc", "dataset": str(data), "workers": 0, "codecs": ["reference"], "metrics": ["si_sdr"]}
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump({**config, "database": f"sqlite:///{tmp_path / 'db.sqlite'}", "cache": str(tmp_path / "c")})
    )
    reasons = set(evalkit.run(path).reason)
    assert reasons == {"degenerate input, not scored: reference constant signal (DC offset 0.25, nothing varies)"}


def test_a_dataset_folder_of_mp3s_says_what_it_holds_and_what_to_do(tmp_path):
    (tmp_path / "a.mp3").write_bytes(b"ID3" + bytes(100))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(
        ConfigError, match=r"holds no items: evalkit reads \.wav, \.flac, \.ogg files and it has \.mp3, \.txt; convert"
    ):
        load_dataset(tmp_path)


def test_an_item_whose_decoded_file_is_an_mp3_is_told_why_it_has_none(tmp_path, speech):
    for folder in ("refs", "degs"):
        (tmp_path / folder).mkdir()
    save(speech, tmp_path / "refs" / "a.wav")
    (tmp_path / "degs" / "a.mp3").write_bytes(b"ID3" + bytes(100))
    (tmp_path / "degs" / "a.txt").write_text("a transcript, not audio")
    condition = DecodedCondition("mine", decoded="degs", base=tmp_path)
    files, _ = condition.match(load_dataset(tmp_path / "refs"), file_digest)
    assert (
        files["a"].problem
        == "decoded: no file for item a in degs (a.mp3 is there: evalkit reads .wav, .flac, .ogg; convert it)"
    )


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.complex64])
def test_integer_pcm_arrays_are_refused_instead_of_scored_at_32767_times_full_scale(dtype):
    with pytest.raises(AudioError, match=rf"^pcm: {np.dtype(dtype).name} samples; Audio takes floats in \[-1, 1\]"):
        Audio(np.ones(1600, dtype=dtype), 16000, "pcm")


def test_a_decoded_file_later_than_the_search_says_to_widen_it():
    speech = _slt()
    late = speech.with_samples(np.pad(speech.samples, ((0, 0), (speech.sample_rate, 0)))[:, : speech.frames])
    (row,) = evaluate("si_sdr", speech, add_noise(late, 30.0))
    assert row.status == "failed" and "at the edge of the ±500 ms searched" in row.reason
    assert "raise alignment.max_lag_ms" in row.reason


def _slt():
    (clip,) = [item for item in load_dataset(DEMO / "manifest.jsonl") if item.id == "arctic-slt-a0009"]
    return clip.load()


def _phrases(count: int) -> Audio:
    """`count` 0.8 s phrases of real speech, each followed by 0.6 s of near silence."""
    speech = _slt()
    rate = speech.sample_rate
    phrase = np.concatenate([speech.samples[0, rate // 2 : rate * 13 // 10], np.zeros(rate * 6 // 10)])
    return add_noise(Audio(np.tile(phrase, count), rate, "phrases"), 50.0)


@pytest.mark.parametrize("name", ["pesq_wb", "pesq_nb"])
def test_pesq_refuses_more_utterances_than_its_c_code_holds_instead_of_crashing(name):
    many = _phrases(60)  # this crashed the process (segmentation fault) inside PESQ
    (row,) = evaluate(name, many, many, align=None)
    assert row.status == "failed" and "holds about 60 separate utterances, more than the 50" in row.reason


def test_pesq_still_scores_an_item_of_many_phrases_within_its_limit():
    some = _phrases(20)
    (row,) = evaluate("pesq_wb", some, add_noise(some, 20.0, seed=5), align=None)
    assert row.status == "ok"
