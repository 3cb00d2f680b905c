"""One contract test over every codec card that can run here."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.audio import Audio, resample
from evalkit.cards import load_cards
from evalkit.errors import CodecError
from evalkit.harness import roundtrip
from evalkit.store.models import Roundtrip

CARDS = load_cards()
AVAILABLE = [name for name, card in CARDS.items() if card.unavailable() is None]


@pytest.fixture(scope="module", params=AVAILABLE)
def codec_run(request, speech):
    codec = CARDS[request.param].build()
    return codec, roundtrip(codec, speech)


def test_every_card_is_available():
    missing = {name: CARDS[name].unavailable() for name in CARDS if name not in AVAILABLE}
    assert not missing, missing


def test_bytes_out_and_length_preserved(codec_run, speech):
    codec, run = codec_run
    assert isinstance(run.data, bytes) and run.payload_bytes > 0
    assert run.decoded.frames == speech.frames and run.decoded.sample_rate == speech.sample_rate


def test_version_fits_the_store(codec_run):
    codec, _ = codec_run  # a longer version string makes every row of the card fail to store
    assert len(codec.info.version) <= Roundtrip.__table__.c.codec_version.type.length, codec.info.version


def test_declared_latency_is_measured(codec_run):
    codec, run = codec_run
    assert run.measured_delay is not None, "decoded output is silent"
    assert run.delay_ok, f"declared {run.declared_delay} samples, measured {run.measured_delay}"


def test_bitrate_matches_nominal(codec_run):
    codec, run = codec_run
    info = codec.info
    if info.nominal_bitrate is None:
        pytest.skip("no nominal bitrate")
    assert run.bitrate == pytest.approx(info.nominal_bitrate, rel=info.bitrate_tolerance)


def test_output_resembles_input(codec_run, speech):
    codec, run = codec_run
    if not codec.info.waveform_matching:
        pytest.skip("parametric codec")
    corr = np.corrcoef(run.decoded.samples[0], speech.samples[0])[0, 1]
    assert corr > 0.5


def test_deterministic(codec_run, speech):
    codec, run = codec_run
    native = resample(speech, codec.info.sample_rate)
    assert codec.encode(native) == codec.encode(native)


def test_decoding_is_deterministic(codec_run):
    codec, run = codec_run  # a decoder that dithers or samples unseeded makes every score unrepeatable
    assert np.array_equal(codec.decode(run.data).samples, codec.decode(run.data).samples)


@pytest.mark.parametrize("damage", ["empty", "truncated", "corrupted", "foreign"])
def test_bad_bytes_raise_codec_error(codec_run, damage):
    codec, run = codec_run
    data = run.data
    bad = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "corrupted": data[:20] + bytes([data[20] ^ 0xFF]) + data[21:],
        "foreign": b"RIFF" + bytes(100),
    }[damage]
    with pytest.raises(CodecError):
        codec.decode(bad)


def test_other_input_rates(codec_run, speech):
    codec, _ = codec_run
    clip = Audio(speech.samples[:, :16000], 16000, "clip")
    for rate in (8000, 44100):
        src = resample(clip, rate)
        out = roundtrip(codec, src).decoded
        assert (out.frames, out.sample_rate) == (src.frames, rate)
