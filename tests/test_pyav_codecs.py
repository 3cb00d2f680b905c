"""The PyAV backends: real packets, the bitrates and modes their parameters promise, loss handling."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest

from evalkit.audio import Audio, resample
from evalkit.cards import load_cards
from evalkit.codecs import BACKENDS
from evalkit.codecs.bitstream import Bitstream
from evalkit.codecs.opus import Opus, opus_packet_mode
from evalkit.errors import CodecError, ConfigError
from evalkit.signals import sinusoid

pytestmark = pytest.mark.skipif(Opus.unavailable() is not None, reason=str(Opus.unavailable()))

CARDS = load_cards()


def build(backend: str, **params):
    return BACKENDS.get(backend)(**params)


def packets(codec, audio: Audio) -> list[bytes]:
    return codec.encode_packets(resample(audio, codec.info.sample_rate)).packets


def payload_bitrate(codec, audio: Audio) -> float:
    return 8.0 * sum(map(len, packets(codec, audio))) / audio.duration


def snr_db(codec, audio: Audio) -> float:
    native = resample(audio, codec.info.sample_rate)
    ref = native.samples[0].astype(np.float64)
    out = codec.decode(codec.encode(native)).samples[0][codec.info.lookahead_samples :].astype(np.float64)
    core = slice(len(ref) // 10, len(ref) - len(ref) // 10)  # skip codec start-up
    return float(10 * np.log10(np.sum(ref[core] ** 2) / np.sum((out[core] - ref[core]) ** 2)))


def dominant_mode(codec, audio: Audio) -> tuple[str, str]:
    """(mode, bandwidth) of most packets; the bandwidth follows the content (the fixture is 16 kHz)."""
    return Counter(opus_packet_mode(p) for p in packets(codec, audio)).most_common(1)[0][0]


# -- Opus ---------------------------------------------------------------------------------


def test_opus_bitrate_rises_with_the_bitrate_param(speech):
    rates = [
        payload_bitrate(build("opus", sample_rate=16000, bitrate=b, application="voip"), speech)
        for b in (8000, 16000, 32000)
    ]
    assert rates == sorted(rates) and rates[-1] > 2.5 * rates[0]


@pytest.mark.parametrize(
    "card, mode",
    [
        ("opus-6k", ("silk", "nb")),
        ("opus-12k", ("silk", "wb")),
        ("opus-16k-wb", ("silk", "wb")),
        ("opus-32k-hybrid", ("hybrid", "")),
        ("opus-32k-celt", ("celt", "")),
        ("opus-64k", ("celt", "")),
        ("opus-24k-lowdelay-10ms", ("celt", "")),
    ],
)
def test_opus_cards_code_in_the_mode_they_name(speech, card, mode):
    found = dominant_mode(CARDS[card].build(), speech)
    assert found[0] == mode[0] and mode[1] in ("", found[1])


def test_opus_cbr_packets_all_have_the_same_size(speech):
    sizes = {len(p) for p in packets(CARDS["opus-16k-cbr"].build(), speech)}
    assert sizes == {16000 * 20 // 8000}


def test_opus_fec_card_carries_lbrr(speech):
    # SILK writes the VAD flag and then the LBRR flag as the first bits after the TOC byte.
    def lbrr_share(codec):
        return np.mean([p[1] >> 6 & 1 for p in packets(codec, speech)])

    assert lbrr_share(CARDS["opus-24k-fec"].build()) > 0.5
    assert lbrr_share(build("opus", sample_rate=16000, bitrate=24000, application="voip")) == 0


def test_opus_version_comes_from_libopus():
    assert build("opus").info.version.startswith("libopus 1.")


def test_opus_lookahead_follows_the_coding_path():
    assert build("opus", application="lowdelay").info.lookahead_samples == 120  # 2.5 ms
    assert build("opus", frame_ms=5).info.lookahead_samples == 120
    assert build("opus", bitrate=64000).info.lookahead_samples == 312  # 6.5 ms, CELT
    assert build("opus", sample_rate=16000, bitrate=16000).info.lookahead_samples == 104  # 6.5 ms, decoded at 16 kHz


# -- AMR-NB ---------------------------------------------------------------------------------

AMR_BYTES = {4750: 13, 5150: 14, 5900: 16, 6700: 18, 7400: 20, 7950: 21, 10200: 27, 12200: 32}


@pytest.mark.parametrize("bitrate, size", AMR_BYTES.items())
def test_amr_nb_every_mode_gives_its_exact_frame_size(speech, bitrate, size):
    codec = build("amr-nb", bitrate=bitrate)
    pkts = packets(codec, speech)
    assert {len(p) for p in pkts} == {size}
    assert {p[0] >> 3 & 0x0F for p in pkts} == {codec.mode}  # ToC frame type = the mode


def test_amr_nb_mode_and_bitrate_are_the_same_setting():
    assert build("amr-nb", mode=5).bitrate == build("amr-nb", bitrate=7950).bitrate == 7950
    assert build("amr-nb").mode == 7


# -- G.711, G.722, G.726 ----------------------------------------------------------------------


@pytest.mark.parametrize("law", ["mu", "a"])
def test_g711_round_trip_is_near_transparent(law):
    tone = sinusoid(1000.0, 1.0, 8000, 0.5)
    assert snr_db(build("g711", law=law), tone) > 30  # log-PCM: ~34-38 dB on a loud tone


@pytest.mark.parametrize("bitrate", [16000, 24000, 32000, 40000])
def test_g726_packets_are_20_ms_of_codewords(speech, bitrate):
    sizes = [len(p) for p in packets(build("g726", bitrate=bitrate), speech)]
    assert set(sizes[:-1]) == {bitrate // 400} and sizes[-1] <= bitrate // 400


def test_g726_quality_rises_with_bitrate():
    tone = sinusoid(700.0, 1.0, 8000, 0.3)
    snrs = [snr_db(build("g726", bitrate=b), tone) for b in (16000, 24000, 32000, 40000)]
    assert snrs == sorted(snrs) and snrs[-1] > 25


def test_g722_round_trip_is_wideband():
    tone = sinusoid(6000.0, 1.0, 16000, 0.3)  # in G.722's upper sub-band
    assert snr_db(build("g722"), tone) > 20


# -- MP3 and AAC ------------------------------------------------------------------------------


def test_mp3_is_constant_bitrate(speech):
    codec = build("mp3", sample_rate=48000, bitrate=64000)
    assert {len(p) for p in packets(codec, speech)} == {64000 * 1152 // 48000 // 8}
    assert "LAME 3." in codec.info.version


def test_aac_header_carries_its_audio_specific_config(speech):
    codec = build("aac", sample_rate=16000, bitrate=32000)
    stream = codec.encode_packets(speech)
    assert len(bytes.fromhex(stream.header["asc"])) >= 2
    broken = Bitstream(stream.backend, {**stream.header, "asc": "zz"}, stream.packets)
    with pytest.raises(CodecError, match="aac"):
        codec.decode_packets(broken)


# -- parameters and availability ------------------------------------------------------------


@pytest.mark.parametrize(
    "backend, params, allowed",
    [
        ("opus", {"sample_rate": 44100}, "8000, 12000, 16000, 24000, 48000"),
        ("opus", {"frame_ms": 30}, "2.5, 5, 10, 20, 40, 60"),
        ("opus", {"application": "music"}, "voip, audio, lowdelay"),
        ("opus", {"vbr": "maybe"}, "constrained"),
        ("opus", {"complexity": 11}, "allowed"),
        ("opus", {"bitrate": 100}, "6000 to 510000"),
        ("opus", {"application": "lowdelay", "fec": True}, "SILK"),
        ("amr-nb", {"bitrate": 12000}, "12200"),
        ("amr-nb", {"mode": 8}, "0, 1, 2"),
        ("amr-nb", {"mode": 7, "bitrate": 4750}, "disagree"),
        ("g711", {"law": "ulaw"}, "mu, a"),
        ("g722", {"bitrate": 56000}, "64000"),
        ("g726", {"bitrate": 8000}, "16000, 24000, 32000, 40000"),
        ("mp3", {"sample_rate": 8000}, "44100"),
        ("mp3", {"sample_rate": 16000, "bitrate": 192000}, "160000"),
        ("aac", {"bitrate": 1000}, "8000 to 320000"),
    ],
)
def test_bad_params_raise_config_error_naming_allowed_values(backend, params, allowed):
    with pytest.raises(ConfigError, match=allowed.replace(".", r"\.")):
        build(backend, **params)


def test_backends_need_and_name_pyav(monkeypatch):
    for name in ("opus", "amr-nb", "g711", "g722", "g726", "mp3", "aac"):
        cls = BACKENDS.get(name)
        assert cls.unavailable() is None and "av==" in cls.install_hint
    monkeypatch.setitem(sys.modules, "av", None)  # what an environment without PyAV looks like
    assert "pip install av==" in BACKENDS.get("opus").unavailable()


# -- lost packets -----------------------------------------------------------------------------

LOSSY_CARDS = ["opus-16k-wb", "opus-64k", "amr-nb-12k2", "g711-alaw", "g722-64k", "g726-32k", "mp3-64k", "aac-32k"]


def drop(stream: Bitstream, lost) -> Bitstream:
    return Bitstream(stream.backend, stream.header, [None if lost(i) else p for i, p in enumerate(stream.packets)])


@pytest.mark.parametrize("card", LOSSY_CARDS)
def test_lost_packets_decode_and_keep_the_length(speech, card):
    codec = CARDS[card].build()
    stream = codec.encode_packets(resample(speech, codec.info.sample_rate))
    clean = codec.decode_packets(stream)
    for lost in (lambda i: i in (0, 1), lambda i: i % 5 == 2, lambda i: 20 <= i < 25):
        out = codec.decode_packets(drop(stream, lost))
        assert out.frames == clean.frames and np.all(np.isfinite(out.samples))
        assert np.max(np.abs(out.samples)) < 1.5, "concealment must not blow up"


@pytest.mark.parametrize("card, concealed", [("opus-16k-wb", True), ("amr-nb-12k2", True), ("g711-mulaw", False)])
def test_lost_packet_is_concealed_or_silenced(speech, card, concealed):
    codec = CARDS[card].build()
    stream = codec.encode_packets(resample(speech, codec.info.sample_rate))
    frame, lost = codec.info.frame_samples, 60  # a packet in the middle of speech
    out = codec.decode_packets(drop(stream, lambda i: i == lost)).samples[0]
    gap = out[lost * frame + codec.info.lookahead_samples + frame // 4 : (lost + 1) * frame]
    assert (np.sqrt(np.mean(gap**2)) > 1e-3) == concealed


def test_all_packets_lost_decodes_to_silence(speech):
    codec = CARDS["opus-16k-wb"].build()
    out = codec.decode_packets(drop(codec.encode_packets(speech), lambda i: True))
    assert out.frames == speech.frames + codec.info.lookahead_samples and not np.any(out.samples)
