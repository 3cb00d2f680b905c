"""Backend-specific checks for AMR-WB, Codec 2, Speex, GSM and LC3 (the contract test covers the rest)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from evalkit.audio import Audio, resample
from evalkit.codecs import BACKENDS, Bitstream, amrwb, codec2, ffmpeg_cli, lc3
from evalkit.errors import CodecError, ConfigError
from evalkit.signals import sinusoid


def _need(backend: str):
    reason = BACKENDS.get(backend).unavailable()
    if reason:
        pytest.skip(reason)


def _clip(speech: Audio, rate: int, seconds: float = 1.0) -> Audio:
    audio = resample(speech, rate)
    return audio.with_samples(audio.samples[:, : int(seconds * rate)])


def _lose(stream: Bitstream, lost: set[int]) -> Bitstream:
    packets = [None if i in lost else p for i, p in enumerate(stream.packets)]
    return Bitstream(stream.backend, stream.header, packets)


def _check_loss(codec, audio: Audio) -> None:
    """Lost packets keep the length, stay finite and are concealed right after speech."""
    stream = codec.encode_packets(audio)
    lost = set(range(10, 14)) | {len(stream.packets) - 1}
    out = codec.decode_packets(_lose(stream, lost))
    info = codec.info
    assert out.frames == audio.frames + info.lookahead_samples
    assert np.all(np.isfinite(out.samples))
    first = 10 * info.frame_samples
    assert np.any(out.samples[0, first : first + info.frame_samples])  # concealed, not muted


# -- AMR-WB ---------------------------------------------------------------------------------

STORAGE_BYTES = {6600: 18, 8850: 24, 12650: 33, 14250: 37, 15850: 41, 18250: 47, 19850: 51, 23050: 59, 23850: 61}


@pytest.mark.parametrize("bitrate", sorted(STORAGE_BYTES))
def test_amrwb_frames_have_the_standard_size(bitrate, speech):
    _need("amr-wb")
    codec = amrwb.AmrWb(bitrate)
    stream = codec.encode_packets(_clip(speech, 16000, 0.5))
    mode = amrwb.AMRWB_MODES[bitrate]
    assert {len(p) for p in stream.packets} == {STORAGE_BYTES[bitrate]}
    assert {p[0] for p in stream.packets} == {mode << 3 | 0x04}  # TOC byte: frame type, quality bit
    assert codec.info.nominal_bitrate == 8 * STORAGE_BYTES[bitrate] * 50


def test_amrwb_dtx_sends_sid_and_no_data_in_silence():
    _need("amr-wb")
    quiet = Audio(np.zeros(16000, np.float32), 16000)
    stream = amrwb.AmrWb(12650, dtx=True).encode_packets(quiet)
    types = {(p[0] >> 3) & 0x0F for p in stream.packets}
    assert types <= {2, 9, 15} and types & {9, 15}
    assert amrwb.AmrWb(12650, dtx=True).info.nominal_bitrate is None


def test_amrwb_lost_packets_are_concealed(speech):
    _need("amr-wb")
    _check_loss(amrwb.AmrWb(23850), _clip(speech, 16000))


def test_amrwb_rejects_bad_params_and_packets():
    with pytest.raises(ConfigError, match="6600"):
        amrwb.AmrWb(12000)
    with pytest.raises(ConfigError, match="dtx"):
        amrwb.AmrWb(12650, dtx="yes")
    _need("amr-wb")
    codec = amrwb.AmrWb(12650)
    with pytest.raises(CodecError, match="amr-wb"):
        codec.decode_packets(Bitstream("amr-wb", {"frames": 320}, [bytes([2 << 3 | 4]) + bytes(10)]))


def test_amrwb_unavailable_names_the_packages(monkeypatch):
    def missing(role):
        raise OSError("not found")

    monkeypatch.setattr(amrwb, "_library", missing)
    assert "apt-get install libvo-amrwbenc0 libopencore-amrwb0" in amrwb.AmrWb.unavailable()


# -- Codec 2 --------------------------------------------------------------------------------

CODEC2_BITS = {"3200": 64, "2400": 48, "1600": 64, "1400": 56, "1300": 52, "1200": 48, "700C": 28}


@pytest.mark.parametrize("mode", sorted(CODEC2_BITS))
def test_codec2_packets_are_frames_of_the_mode(mode):
    _need("codec2")
    codec = codec2.Codec2(mode)
    audio = sinusoid(200.0, 0.5, 8000)
    stream = codec.encode_packets(audio)
    info = codec.info
    assert {len(p) for p in stream.packets} == {(CODEC2_BITS[mode] + 7) // 8}
    assert info.frame_samples == (160 if mode in ("3200", "2400") else 320)
    assert len(stream.packets) * info.frame_samples >= audio.frames + info.lookahead_samples
    assert info.nominal_bitrate == 8 * ((CODEC2_BITS[mode] + 7) // 8) * 8000 / info.frame_samples


def test_codec2_decoding_is_deterministic(speech):
    """libcodec2's global random generator must not make two decodes of one stream differ."""
    _need("codec2")
    codec = codec2.Codec2("700C")
    data = codec.encode(_clip(speech, 8000))
    assert np.array_equal(codec.decode(data).samples, codec.decode(data).samples)


def test_codec2_lost_packets_repeat_the_last_frame(speech):
    _need("codec2")
    _check_loss(codec2.Codec2("1600"), _clip(speech, 8000))
    plan = codec2.conceal_by_repetition([None, b"a", None, None, b"b"], b"0")
    assert plan == [(b"0", 0.0), (b"a", 1.0), (b"a", 1.0), (b"a", 0.5), (b"b", 1.0)]


def test_codec2_rejects_bad_modes():
    with pytest.raises(ConfigError, match="700C"):
        codec2.Codec2("800")
    with pytest.raises(ConfigError, match="codec2-cli"):
        codec2.Codec2("450")  # only the command-line tools have the 450 modes
    with pytest.raises(ConfigError, match="450PWB"):
        codec2.Codec2Cli("600")
    assert codec2.Codec2("700c").mode == codec2.Codec2(700).mode == "700C"


@pytest.mark.parametrize("mode,rate", [("450", 8000), ("450PWB", 16000)])
def test_codec2_cli_450_modes(mode, rate, speech):
    _need("codec2-cli")
    codec = codec2.Codec2Cli(mode)
    audio = _clip(speech, rate)
    stream = codec.encode_packets(audio)
    assert {len(p) for p in stream.packets} == {3}  # 18 bits in 3 bytes
    out = codec.decode_packets(stream)
    assert (out.sample_rate, out.frames) == (rate, audio.frames + codec.info.lookahead_samples)
    assert np.any(out.samples)


def test_codec2_tool_failure_and_timeout_are_codec_errors(monkeypatch):
    with pytest.raises(CodecError, match="codec2-cli"):
        codec2._run([sys.executable, "-c", "import sys; sys.exit(3)"], b"", "codec2-cli")
    monkeypatch.setattr(codec2, "_TIMEOUT", 0.2)
    with pytest.raises(CodecError, match="timed out"):
        codec2._run([sys.executable, "-c", "import time; time.sleep(5)"], b"", "codec2-cli")


# -- Speex and GSM ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate,quality", [(8000, 4), (16000, 5), (8000, 0), (16000, 10)])
def test_speex_packets_are_single_frames(rate, quality):
    _need("speex")
    codec = ffmpeg_cli.Speex(rate, quality)
    audio = sinusoid(300.0, 0.5, rate)
    stream = codec.encode_packets(audio)
    header = stream.header
    assert (header["rate"], header["frames_per_packet"], header["mode"]) == (rate, 1, rate // 16000)
    assert header["speex_version"].startswith("1.")
    assert len(stream.packets) * codec.info.frame_samples == codec._padded(audio.samples).shape[1]
    assert {len(p) for p in stream.packets} == {ffmpeg_cli.SPEEX_FRAME_BYTES[rate][quality]}


def test_speex_and_gsm_conceal_lost_packets(speech):
    _need("speex")
    _check_loss(ffmpeg_cli.Speex(16000, 5), _clip(speech, 16000))
    _need("gsm")
    _check_loss(ffmpeg_cli.Gsm(), _clip(speech, 8000))


def test_speex_header_must_travel_in_the_bitstream():
    _need("speex")
    codec = ffmpeg_cli.Speex(8000, 4)
    stream = codec.encode_packets(sinusoid(300.0, 0.2, 8000))
    header = {k: v for k, v in stream.header.items() if k != "mode"}
    with pytest.raises(CodecError, match="speex"):
        codec.decode_packets(Bitstream("speex", header, stream.packets))


def test_gsm_frames_are_33_bytes():
    _need("gsm")
    codec = ffmpeg_cli.Gsm()
    stream = codec.encode_packets(sinusoid(300.0, 0.5, 8000))
    assert {len(p) for p in stream.packets} == {33}
    assert {p[0] >> 4 for p in stream.packets} == {0xD}
    assert codec.info.nominal_bitrate == 13200
    with pytest.raises(CodecError, match="gsm"):
        codec.decode_packets(Bitstream("gsm", {"frames": 160}, [bytes(33)]))


def test_speex_rejects_bad_params():
    with pytest.raises(ConfigError, match="8000"):
        ffmpeg_cli.Speex(sample_rate=11025)
    with pytest.raises(ConfigError, match="0 to 10"):
        ffmpeg_cli.Speex(quality=11)


def test_ffmpeg_missing_gives_the_install_hint(monkeypatch):
    monkeypatch.setattr(ffmpeg_cli.shutil, "which", lambda name: None)
    for cls in (ffmpeg_cli.Speex, ffmpeg_cli.Gsm):
        assert "apt-get install ffmpeg" in cls.unavailable()


def test_ffmpeg_failure_is_a_codec_error():
    _need("gsm")
    with pytest.raises(CodecError, match="gsm: ffmpeg failed"):
        ffmpeg_cli._ffmpeg_encode("gsm", 8000, np.zeros(160, "<i2"), ["-c:a", "no-such-encoder", "-f", "gsm"])


# -- LC3 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate,bitrate,frame_ms,nbytes", [(16000, 32000, 10, 40), (48000, 64000, 10, 80), (24000, 32000, 7.5, 30)]
)
def test_lc3_frames(rate, bitrate, frame_ms, nbytes):
    _need("lc3")
    codec = lc3.Lc3(rate, bitrate, frame_ms)
    stream = codec.encode_packets(sinusoid(440.0, 0.3, rate))
    info = codec.info
    assert {len(p) for p in stream.packets} == {nbytes}
    assert info.frame_samples == int(rate * frame_ms / 1000)
    assert info.nominal_bitrate == bitrate
    assert info.lookahead_samples == int(rate * (2.5 if frame_ms == 10 else 4) / 1000)


def test_lc3_lost_packets_use_plc(speech):
    _need("lc3")
    _check_loss(lc3.Lc3(16000, 32000), _clip(speech, 16000))


def test_lc3_rejects_bad_params():
    with pytest.raises(ConfigError, match="48000"):
        lc3.Lc3(sample_rate=44100)
    with pytest.raises(ConfigError, match="7.5"):
        lc3.Lc3(frame_ms=5)
    with pytest.raises(ConfigError, match="multiple of 800"):
        lc3.Lc3(bitrate=32100)
    with pytest.raises(ConfigError, match="16000 to 320000"):
        lc3.Lc3(bitrate=8000)


def test_codec2_decodes_as_a_fresh_process_would(speech):
    """The private library instance starts from libcodec2's initial random state, whatever
    pycodec2 decoded in this process before: the output equals a fresh interpreter's."""
    _need("codec2")
    import pycodec2

    codec = codec2.Codec2("1300")
    data = codec.encode(_clip(speech, 8000))
    frames = b"".join(codec.encode_packets(_clip(speech, 8000)).packets)
    pycodec2.Codec2(1300).decode(frames[:7] * 20)  # advances the shared generator
    script = (
        "import sys, numpy, pycodec2\n"
        "d = sys.stdin.buffer.read(); c = pycodec2.Codec2(1300)\n"
        "sys.stdout.buffer.write(numpy.concatenate([c.decode(d[i:i + 7]) for i in range(0, len(d), 7)]).tobytes())"
    )
    fresh = subprocess.run([sys.executable, "-c", script], input=frames, capture_output=True, check=True).stdout
    assert codec._decode_frames(frames) == fresh
    assert np.array_equal(codec.decode(data).samples, codec.decode(data).samples)


def test_codec2_decodes_alike_from_several_threads(speech):
    """Threads (a Dask worker runs several) never share a library instance's random state."""
    _need("codec2")
    from concurrent.futures import ThreadPoolExecutor

    codec = codec2.Codec2("700C")
    data = codec.encode(_clip(speech, 8000))
    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(lambda _: codec.decode(data).samples, range(8)))
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])
