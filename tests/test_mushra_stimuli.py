"""Stimulus preparation: excerpts, rendering through the harness, levelling, checks, lossless bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evalkit.audio import Audio, loudness
from evalkit.errors import ConfigError
from evalkit.mushra import stimuli as stimuli_module
from evalkit.mushra.spec import load_spec, spec_from_dict
from evalkit.mushra.stimuli import deliver, encode_audio, excerpt, prepare_item, prepare_stimuli, read_stimulus

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    t = np.arange(3 * 16000) / 16000
    x = 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(len(t))
    sf.write(tmp_path / "a.wav", x, 16000, subtype="PCM_16")
    sf.write(tmp_path / "a-gain.wav", 0.5 * x, 16000, subtype="PCM_16")  # 6 dB quieter
    sf.write(tmp_path / "a-short.wav", x[:-800], 16000, subtype="PCM_16")
    sf.write(tmp_path / "a-stereo.wav", np.stack([x, x], axis=1), 16000, subtype="PCM_16")
    clicks = 0.003 * rng.standard_normal(len(t))
    clicks[::8000] = 0.9  # quiet but peaky: levelling it to -26 LUFS would clip
    sf.write(tmp_path / "clicks.wav", clicks, 16000, subtype="PCM_16")
    return tmp_path


def make(folder, files="a-gain.wav", **changes):
    data = {
        "name": "s",
        "items": [{"id": "a", "path": "a.wav"}],
        "sample_rate": 16000,
        "conditions": ["g711-alaw", {"name": "quiet", "files": {"a": files}}],
        **changes,
    }
    return spec_from_dict(data, base=folder, source="s.yaml")


def test_all_stimuli_share_rate_length_channels_and_are_levelled(folder):
    spec = make(folder)
    stimuli = prepare_item(spec, spec.items[0])
    assert list(stimuli) == ["reference", "anchor-lp35", "anchor-lp70", "g711-alaw", "quiet"]
    shapes = {(s.audio.sample_rate, s.audio.frames, s.audio.channels) for s in stimuli.values()}
    assert shapes == {(16000, 48000, 1)}
    assert stimuli["reference"].loudness == pytest.approx(-26.0, abs=0.02)
    assert stimuli["quiet"].gain_db == pytest.approx(stimuli["reference"].gain_db + 6.02, abs=0.05)
    assert stimuli["quiet"].loudness == pytest.approx(-26.0, abs=0.02)  # a codec's gain error is levelled away
    assert stimuli["anchor-lp35"].gain_db == stimuli["reference"].gain_db  # the anchor keeps the reference gain
    assert stimuli["anchor-lp35"].loudness < stimuli["reference"].loudness  # ... and is quieter, by its lost band
    assert stimuli["g711-alaw"].bitrate == pytest.approx(64000, rel=0.01) and stimuli["quiet"].bitrate is None
    for s in stimuli.values():  # on the 16-bit grid, so FLAC/WAV delivery is exact
        assert np.array_equal(np.round(s.audio.samples * 32768), s.audio.samples * 32768)


def test_levelling_policies_can_be_switched(folder):
    spec = make(folder, loudness={"anchors": "normalize", "codecs": "reference"})
    stimuli = prepare_item(spec, spec.items[0])
    assert stimuli["anchor-lp35"].loudness == pytest.approx(-26.0, abs=0.02)
    assert stimuli["quiet"].gain_db == stimuli["reference"].gain_db


def test_clipping_is_refused_with_advice(folder):
    spec = make(folder, items=[{"id": "a", "path": "clicks.wav"}], conditions=["g711-alaw"])
    with pytest.raises(ConfigError, match="item a, condition reference: peaks at .* lower loudness.target_lufs"):
        prepare_item(spec, spec.items[0])


def test_prerendered_files_must_match_length_and_channels(folder):
    with pytest.raises(ConfigError, match=r"a-short.wav: 2.950 s long .* reference 3.000 s"):
        prepare_item(make(folder, "a-short.wav"), make(folder, "a-short.wav").items[0])
    with pytest.raises(ConfigError, match=r"a-stereo.wav: 2 channel\(s\), the reference has 1"):
        prepare_item(make(folder, "a-stereo.wav"), make(folder, "a-stereo.wav").items[0])


def test_excerpt_is_cut_faded_and_resampled(folder):
    spec = make(folder, sample_rate=48000, items=[{"id": "a", "path": "a.wav", "start": 0.5, "end": 2.5}])
    audio = excerpt(spec, spec.items[0])
    assert (audio.sample_rate, audio.frames) == (48000, 96000)
    edge = np.abs(audio.samples[0, :48]).max()  # the first millisecond is inside the 10 ms fade-in
    assert edge < 0.2 * np.abs(audio.samples[0, 4800:9600]).max()


def test_bytes_are_lossless_and_carry_no_names(folder):
    spec = make(folder)
    reference = prepare_item(spec, spec.items[0])["reference"].audio
    for fmt, magic in [("flac", b"fLaC"), ("wav", b"RIFF")]:
        data = encode_audio(reference, fmt)
        back, rate = sf.read(io.BytesIO(data), dtype="float32")
        assert data[:4] == magic and rate == 16000 and np.array_equal(back, reference.samples[0])
        assert b"a.wav" not in data and b"reference" not in data and b"libFLAC" not in data


def test_rendered_conditions_come_from_the_cache_the_second_time(folder, tmp_path, monkeypatch):
    spec = make(folder)
    first = list(prepare_stimuli(spec, tmp_path / "out1", tmp_path / "cache"))

    def no_codecs(*args, **kwargs):
        raise AssertionError("the harness ran again")

    monkeypatch.setattr(stimuli_module, "roundtrip", no_codecs)
    second = list(prepare_stimuli(spec, tmp_path / "out2", tmp_path / "cache"))
    assert [(s.condition, sha, s.bitrate) for s, _, sha in first] == [
        (s.condition, sha, s.bitrate) for s, _, sha in second
    ]
    assert sorted(p.name for p in (tmp_path / "out1").iterdir()) == [f"000-0{k}.wav" for k in range(5)]


@pytest.mark.slow
def test_demo_test_prepares(tmp_path):
    spec = load_spec(ROOT / "tests_mushra" / "demo.yaml")
    prepared = list(prepare_stimuli(spec, tmp_path / "demo", tmp_path / "cache"))
    assert len(prepared) == len(spec.items) * len(spec.conditions) == 48
    for stimulus, _, _ in prepared:
        assert stimulus.audio.sample_rate == 48000
        if stimulus.condition not in ("anchor-lp35", "anchor-lp70"):
            assert loudness(stimulus.audio) == pytest.approx(-26.0, abs=0.05)
        assert stimulus.peak_dbfs < -1.0


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_delivery_is_24_bit_wav_with_the_stored_audio_under_a_fresh_dither(fmt, tmp_path):
    audio = Audio(np.random.default_rng(3).normal(0, 0.1, (2, 8000)).astype(np.float32), 16000)
    stored = tmp_path / f"s.{fmt}"
    stored.write_bytes(encode_audio(audio, fmt))
    samples = read_stimulus(stored)
    assert samples.dtype == np.int16 and samples.shape == (8000, 2)
    one, two = deliver(samples, 16000, b"\x01" * 16), deliver(samples, 16000, b"\x02" * 16)
    assert one == deliver(samples, 16000, b"\x01" * 16) and one != two  # one seed, one byte string
    assert len(one) == len(two) == 44 + 8000 * 2 * 3 and one[:44] == two[:44]
    info = sf.info(io.BytesIO(one))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 2, 8000, "PCM_24")
    decoded = sf.read(io.BytesIO(one), dtype="int32")[0] >> 8  # 24-bit values in the top of int32
    error = decoded - samples.astype(np.int32) * 256
    assert np.abs(error).max() <= 255 and abs(error.mean()) < 2  # TPDF within one 16-bit step, no offset
    assert 80 < error.std() < 125  # triangular over +-256: std 256/sqrt(6) = 104.5
    low_one = np.frombuffer(one[44:], np.uint8)[0::3]
    low_two = np.frombuffer(two[44:], np.uint8)[0::3]
    assert np.mean(low_one == low_two) < 0.02  # the low bytes of two deliveries agree by chance only (1/256)
