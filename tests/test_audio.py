"""Audio type, file I/O, resampling, loudness and alignment; each bad input gives its AudioError."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.audio import (
    Audio,
    align,
    estimate_delay,
    load,
    loudness,
    normalize_loudness,
    require_channels,
    resample,
    save,
    to_mono,
)
from evalkit.errors import AudioError
from evalkit.signals import sinusoid, white_noise


def test_audio_is_immutable_float32_channels_by_frames():
    audio = Audio(np.zeros(100, dtype=np.float64), 16000, "x")
    assert audio.samples.dtype == np.float32 and audio.samples.shape == (1, 100)
    with pytest.raises(ValueError):
        audio.samples[0, 0] = 1.0
    with pytest.raises(AttributeError):
        audio.sample_rate = 8000


def test_audio_copies_its_input():
    source = np.zeros((1, 10), dtype=np.float32)
    audio = Audio(source, 8000)
    source[0, 0] = 1.0
    assert audio.samples[0, 0] == 0.0


@pytest.mark.parametrize(
    "samples, rate, message",
    [
        (np.zeros(0), 16000, "empty"),
        (np.array([0.0, np.nan]), 16000, "NaN"),
        (np.array([0.0, np.inf]), 16000, "NaN or infinite"),
        (np.zeros(10), 0, "sample rate"),
        (np.zeros(10), 10_000_000, "sample rate"),
        (np.zeros(10), 16000.5, "sample rate"),
        (np.zeros((1000, 2)), 16000, "channels"),
        (np.zeros((2, 2, 2)), 16000, "shape"),
    ],
)
def test_bad_audio_is_rejected_with_the_item_named(samples, rate, message):
    with pytest.raises(AudioError, match=message) as err:
        Audio(samples, rate, "item-42")
    assert "item-42" in str(err.value)


@pytest.mark.parametrize(
    "suffix, subtype, tolerance",
    [
        (".wav", "PCM_U8", 1 / 64),
        (".wav", "PCM_16", 1e-4),
        (".wav", "PCM_24", 1e-6),
        (".wav", "PCM_32", 1e-8),
        (".wav", "FLOAT", 0),
        (".flac", "PCM_S8", 1 / 64),
        (".flac", "PCM_16", 1e-4),
        (".flac", "PCM_24", 1e-6),
        (".ogg", "VORBIS", None),
    ],
)
def test_save_load_round_trip(tmp_path, suffix, subtype, tolerance):
    audio = sinusoid(440, 0.5, 16000, 0.5)
    path = save(audio, tmp_path / f"x{suffix}", subtype)
    back = load(path)
    assert back.sample_rate == 16000 and back.id == path.name
    if tolerance is None:  # lossy: same length and correlated
        assert abs(back.frames - audio.frames) < 1024
        n = min(back.frames, audio.frames)
        assert np.corrcoef(back.samples[0, :n], audio.samples[0, :n])[0, 1] > 0.99
    else:
        assert back.frames == audio.frames
        np.testing.assert_allclose(back.samples, audio.samples, atol=tolerance)


def test_stereo_round_trip(tmp_path):
    audio = Audio(np.stack([sinusoid(300).samples[0], sinusoid(500).samples[0]]), 16000, "st")
    back = load(save(audio, tmp_path / "st.wav", "FLOAT"))
    assert back.channels == 2
    np.testing.assert_array_equal(back.samples, audio.samples)


def test_load_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    header_only = tmp_path / "header.wav"
    save(Audio(np.zeros(10), 16000), header_only)
    header_only.write_bytes(header_only.read_bytes()[:44])
    nan_file = tmp_path / "nan.wav"
    nan_file.write_bytes(b"")
    for path, message in [
        (tmp_path / "missing.wav", "no such file"),
        (empty, "empty"),
        (text, "not readable as audio"),
        (header_only, "no audio frames"),
    ]:
        with pytest.raises(AudioError, match=message) as err:
            load(path)
        assert path.name in str(err.value)


def test_non_finite_file_is_rejected(tmp_path):
    import soundfile as sf

    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        load(path)


def test_save_refuses_unknown_format_and_overwrite(tmp_path):
    audio = sinusoid()
    with pytest.raises(AudioError, match="suffix"):
        save(audio, tmp_path / "x.mp4")
    save(audio, tmp_path / "x.wav")
    with pytest.raises(AudioError, match="--force"):
        save(audio, tmp_path / "x.wav", force=False)


def test_resample_preserves_a_tone_and_timing():
    tone = sinusoid(1000, 1.0, 48000)
    down = resample(tone, 16000)
    assert down.frames == 16000 and down.sample_rate == 16000
    expected = sinusoid(1000, 1.0, 16000).samples[0]
    np.testing.assert_allclose(down.samples[0, 100:-100], expected[100:-100], atol=2e-3)
    assert resample(tone, 48000) is tone


def test_to_mono_and_channel_check():
    stereo = Audio(np.stack([np.ones(10), -np.ones(10)]), 8000, "st")
    assert np.all(to_mono(stereo).samples == 0)
    with pytest.raises(AudioError, match="st: has 2 channels"):
        require_channels(stereo, 1, "codec x")


def test_loudness_normalisation_hits_target():
    noise = white_noise(2.0)
    louder = normalize_loudness(noise, -20.0)
    assert loudness(louder) == pytest.approx(-20.0, abs=0.05)


def test_loudness_errors():
    with pytest.raises(AudioError, match="too short"):
        loudness(sinusoid(seconds=0.1))
    with pytest.raises(AudioError, match="silent"):
        normalize_loudness(Audio(np.zeros(16000), 16000, "quiet"))


@pytest.mark.parametrize("delay", [0, 1, 37, 160, -25])
def test_delay_is_recovered_exactly_and_aligned(delay):
    ref = white_noise(1.0, seed=3)
    shifted = np.roll(np.pad(ref.samples[0], (200, 200)), delay)[200:-200]
    deg = ref.with_samples(shifted)
    assert estimate_delay(ref, deg, 400) == delay
    if delay >= 0:
        aligned = align(deg, delay, ref.frames)
        np.testing.assert_array_equal(aligned.samples[0, : ref.frames - delay], ref.samples[0, : ref.frames - delay])


# -- the degenerate-content check's single-precision shortcut --------------------------------


def _content_cases(rng: np.random.Generator):
    """Signals on and around every decision of check_content: lengths about the minimum, RMS
    about the silence floor (with and without a DC offset), samples about the 0.999 clipping
    level and full scale, stereo with different offsets, and random levels over 150 dB."""
    rate = 16000
    floor = 10.0 ** (-60.0 / 20.0)
    below, above = np.nextafter(np.float32(0.999), np.float32(0)), np.nextafter(np.float32(0.999), np.float32(2))
    for frames in (1, 2, 3999, 4000, 4001, 8000):
        yield rng.standard_normal(frames) * 0.1
    for scale in (0.0, 0.5, 1.0, 1.5, 1.9, 1.99, 2.0, 2.01, 2.1, 3.0):
        for offset in (0.0, 1e-4, floor, 0.5, 0.999, -0.9):
            noise = rng.standard_normal(rate)
            yield offset + scale * floor * noise / np.sqrt(np.mean(noise**2))
    for level in (below, np.float32(0.999), above, np.float32(1.0), np.nextafter(np.float32(1), np.float32(2)), 1.5):
        for count in (0, 1, 2, 5, 100, 4000):
            x = rng.uniform(-0.5, 0.5, rate).astype(np.float32)
            x[rng.choice(rate, count, replace=False)] = level * rng.choice([-1, 1], count)
            yield x
    for _ in range(300):
        frames = int(rng.integers(1, 3 * rate))
        channels = int(rng.integers(1, 3))
        level = 10.0 ** rng.uniform(-7.5, 0.3)
        x = rng.standard_normal((channels, frames)) * level + rng.uniform(-1, 1, (channels, 1)) * rng.choice(
            [0, 1e-3, 1]
        )
        yield np.clip(x, -1.2, 1.2) if rng.random() < 0.5 else x
    yield np.full((2, rate), 0.25)
    yield np.zeros(rate)
    yield np.vstack([np.zeros(rate), rng.standard_normal(rate) * 3 * floor])


def test_content_check_shortcut_decides_exactly_as_double_precision():
    """The single-precision shortcut must never change a decision, a reason or a clipped fraction."""
    from evalkit.audio import _check_content_exactly, _plainly_fine, check_content

    rng = np.random.default_rng(2016)
    shortcut = 0
    for index, samples in enumerate(_content_cases(rng)):
        audio = Audio(samples, 16000)
        for minimum in (0.25, 0.5):
            exact = _check_content_exactly(audio, minimum)
            assert check_content(audio, minimum) == exact, (index, minimum)
            shortcut += _plainly_fine(audio, minimum) is not None
    assert shortcut > 250  # the shortcut really decided most cases, not the exact check behind it
