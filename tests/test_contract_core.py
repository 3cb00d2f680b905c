"""The bitstream container, the registry, codec cards and the harness, with the identity codec."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.audio import Audio
from evalkit.cards import Card, load_card, load_cards
from evalkit.codecs import BACKENDS, Bitstream
from evalkit.codecs.reference import Identity
from evalkit.errors import AudioError, CodecError, ConfigError
from evalkit.harness import roundtrip
from evalkit.registry import Registry
from evalkit.signals import white_noise


def test_bitstream_round_trip_and_overhead():
    stream = Bitstream("demo", {"frames": 3, "mode": "x"}, [b"abc", b"", bytes(300)])
    data = stream.to_bytes()
    back = Bitstream.from_bytes(data, "demo")
    assert back == stream and back.payload_bytes == 303
    assert len(data) - back.payload_bytes < 60  # container overhead stays small


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda d: b"", "empty or truncated"),
        (lambda d: d[:-7], "checksum"),
        (lambda d: b"XXXX" + d[4:], "bad magic"),
        (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], "checksum"),
    ],
)
def test_bitstream_defects_raise_codec_error(mangle, message):
    data = Bitstream("demo", {"frames": 1}, [b"abc" * 50]).to_bytes()
    with pytest.raises(CodecError, match=message):
        Bitstream.from_bytes(mangle(data), "demo")


def test_bitstream_from_another_backend_is_refused():
    data = Bitstream("opus", {"frames": 1}, [b"x"]).to_bytes()
    with pytest.raises(CodecError, match="written by codec backend 'opus'"):
        Bitstream.from_bytes(data, "demo")


def test_registry_refuses_duplicates_and_names_the_known():
    registry = Registry("thing", "evalkit.tests.none")
    registry.register("a")(object)
    with pytest.raises(ConfigError, match="registered twice"):
        registry.add("a", object)
    with pytest.raises(ConfigError, match="known: a"):
        registry.get("b")


def test_every_backend_declares_an_install_hint_when_unavailable():
    for name in BACKENDS.names():
        reason = BACKENDS.get(name).unavailable()
        assert reason is None or len(reason) > 10


def test_card_hash_changes_with_params_only():
    a = Card("x", "identity", {"sample_rate": 16000}, description="one")
    b = Card("y", "identity", {"sample_rate": 16000}, description="two")
    c = Card("x", "identity", {"sample_rate": 8000})
    assert a.config_hash == b.config_hash != c.config_hash


def test_bad_cards_are_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nbackend: identity\ncolour: red\n")
    with pytest.raises(ConfigError, match=r"a.yaml:3: colour: unknown key"):
        load_card(tmp_path / "a.yaml")
    (tmp_path / "a.yaml").write_text("name: a\nbackend: identity\nparams: {rate: 3}\n")
    with pytest.raises(ConfigError, match="bad parameters"):
        load_card(tmp_path / "a.yaml").build()
    (tmp_path / "b.yaml").write_text("name: a\nbackend: identity\n")
    with pytest.raises(ConfigError, match="also used"):
        load_cards(tmp_path)


def test_unknown_backend_is_unavailable_not_a_crash():
    card = Card("x", "no-such-backend")
    assert "unknown backend" in card.unavailable()
    with pytest.raises(ConfigError, match="unavailable"):
        card.build()


def test_encode_checks_rate_and_channels():
    codec = Identity(16000)
    with pytest.raises(AudioError, match="sample rate"):
        codec.encode(white_noise(sample_rate=8000))
    with pytest.raises(AudioError, match="2 channels"):
        codec.encode(Audio(np.zeros((2, 1600)), 16000, "st"))


def test_roundtrip_any_rate_and_length_and_downmix():
    codec = Identity(16000)
    for rate, frames in [(16000, 1), (16000, 321), (22050, 9999), (48000, 48000)]:
        audio = Audio(np.random.default_rng(rate).uniform(-0.5, 0.5, frames), rate, "x")
        run = roundtrip(codec, audio)
        assert (run.decoded.frames, run.decoded.sample_rate) == (frames, rate)
    stereo = Audio(np.zeros((2, 1600)) + 0.1, 16000, "st")
    assert roundtrip(codec, stereo, downmix=True).decoded.channels == 1


def test_identity_is_bit_exact_at_16_bits():
    audio = white_noise(1.0)
    run = roundtrip(Identity(16000), audio)
    np.testing.assert_allclose(run.decoded.samples, audio.samples, atol=1 / 32768)
    assert run.measured_delay == 0 and run.delay_ok
    assert run.bitrate == pytest.approx(256000, rel=0.05)


def test_lost_packets_keep_the_length():
    codec = Identity(16000)
    stream = codec.encode_packets(white_noise(1.0))
    lossy = Bitstream(stream.backend, stream.header, [None if i % 5 == 0 else p for i, p in enumerate(stream.packets)])
    out = codec.decode_packets(lossy)
    assert out.frames == 16000


def _misbehaving(encode=None, decode=None, **info):
    """An Identity backend (not registered) with one method or CodecInfo field replaced."""
    from dataclasses import replace

    methods = {"backend": "misbehaving"}
    if encode:
        methods["_encode"] = lambda self, samples: encode(Identity._encode(self, samples), samples)
    if decode:
        methods["_decode"] = lambda self, header, packets: decode(Identity._decode(self, header, packets))
    if info:
        methods["info"] = property(lambda self: replace(Identity.info.fget(self), **info))
    return type("Misbehaving", (Identity,), methods)(16000)


@pytest.mark.parametrize(
    "encode, message",
    [
        (lambda out, x: (out[0], [p.decode("latin-1") for p in out[1]]), "packet 0 as str, not bytes"),
        (lambda out, x: (out[0], [np.zeros(4, np.int16)]), "packet 0 as ndarray"),
        (lambda out, x: (None, out[1]), "a NoneType header"),
        (lambda out, x: (out[0], b"".join(out[1])), "packets as bytes"),
    ],
)
def test_an_encoder_returning_other_than_bytes_is_named(encode, message):
    with pytest.raises(CodecError, match=f"^misbehaving: _encode returned .*{message}"):
        _misbehaving(encode=encode).encode(white_noise(0.2))


@pytest.mark.parametrize(
    "decode, message",
    [
        (lambda out: (out * 32768).astype(np.int16), "returned int16 samples; return floats"),
        (lambda out: np.stack([out, out]), r"shape \(2, 3200\); the codec declares 1 channel"),
        (lambda out: out[::2], "returned 1600 samples for a 3200-sample input"),
        (lambda out: out[np.newaxis, np.newaxis], r"shape \(1, 1, 3200\)"),
    ],
)
def test_a_decoder_output_that_would_be_padded_or_misread_is_refused(decode, message):
    codec = _misbehaving(decode=decode)
    with pytest.raises(CodecError, match=message):
        codec.decode(codec.encode(white_noise(0.2)))


def test_a_decoder_calling_sys_exit_fails_the_item_not_the_process():
    codec = _misbehaving(decode=lambda out: exit(3))
    with pytest.raises(CodecError, match=r"failed to decode \(SystemExit: 3\)"):
        codec.decode(codec.encode(white_noise(0.2)))


@pytest.mark.parametrize(
    "field, value",
    [
        ("lookahead_samples", -5),
        ("lookahead_samples", 10**9),
        ("frame_samples", 0),
        ("sample_rate", 16000.5),
        ("nominal_bitrate", -1.0),
        ("nominal_bitrate", 1e15),
        ("nominal_bitrate", float("nan")),
    ],
)
def test_codec_info_refuses_values_nothing_could_measure(field, value):
    with pytest.raises(CodecError, match=f"CodecInfo.{field} is"):
        _misbehaving(**{field: value}).encode(white_noise(0.2))


class _FailsToStart(Identity):
    def __init__(self, sample_rate: int = 16000):
        raise RuntimeError("cannot open its device\nand a second line of library advice")


def test_a_backend_constructor_failing_is_named_with_its_card(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS._entries, "fails-to-start", _FailsToStart)
    (tmp_path / "f.yaml").write_text("name: f\nbackend: fails-to-start\n")
    with pytest.raises(
        ConfigError,
        match=r"^codec card f: backend fails-to-start failed to start: RuntimeError: cannot open its device$",
    ):  # one line: the library's further lines of advice are left out
        load_card(tmp_path / "f.yaml").build()


def test_the_python_api_names_a_plain_array_passed_for_audio():
    from evalkit.metrics.wrapper import evaluate

    samples = white_noise(0.2).samples[0]
    with pytest.raises(AudioError, match="roundtrip takes evalkit.Audio.*got ndarray"):
        roundtrip(Identity(16000), samples)
    with pytest.raises(AudioError, match="encode takes evalkit.Audio.*got ndarray"):
        Identity(16000).encode(samples)
    with pytest.raises(AudioError, match="evaluate: ref is ndarray"):
        evaluate("si_sdr", samples, samples)
    with pytest.raises(AudioError, match="evaluate: deg is NoneType"):
        evaluate("si_sdr", white_noise(0.2), None)
