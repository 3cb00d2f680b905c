"""Bad input, case by case: degenerate audio and crafted bitstreams, each with its exact outcome.

An outcome is one of: scored (ok), a one-line error naming the culprit, or failed/skipped rows
with their reason while the rest of the run goes on.
"""

from __future__ import annotations

import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import yaml

import evalkit
from evalkit.audio import MIN_COST_SECONDS, Audio, check_content, save
from evalkit.cards import find_card
from evalkit.cli import main
from evalkit.codecs import Bitstream, StreamConfigError
from evalkit.codecs.reference import Identity
from evalkit.errors import CodecError
from evalkit.harness import roundtrip
from evalkit.signals import white_noise
from evalkit.store import connect, delay_check, roundtrips_frame

RATE = 16000


def _noise(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def _audio(samples, name: str = "x") -> Audio:
    return Audio(np.asarray(samples, np.float32), RATE, name)


# -- degenerate content: one classification, with its reason --------------------------------

CONTENT_CASES = {
    "one sample": ([0.3], "too short"),
    "0.2 s of noise": (_noise(0.2), "too short"),
    "digital silence": (np.zeros(RATE), "near-silent"),
    "noise at -75 dBFS": (_noise(1.0, 10 ** (-75 / 20)), "near-silent"),
    "DC offset": (np.full(RATE, 0.5), "constant"),
    "negative DC under faint noise": (-0.3 + _noise(1.0, 1e-5), "constant"),
    "noise": (_noise(1.0), None),
    "quiet noise at -50 dBFS": (_noise(1.0, 10 ** (-50 / 20)), None),
}


@pytest.mark.parametrize("case", list(CONTENT_CASES))
def test_degenerate_content_is_classified_with_a_reason(case):
    samples, problem = CONTENT_CASES[case]
    found = check_content(_audio(samples))
    assert found.problem == problem
    assert (found.reason is None) == (problem is None)


def test_real_speech_is_scorable_and_unclipped(speech):
    found = check_content(speech)
    assert found.problem is None and found.warning is None


def test_a_peak_normalised_file_is_not_called_clipped(speech):
    x = speech.samples / np.max(np.abs(speech.samples))
    assert check_content(speech.with_samples(x)).warning is None


def test_clipping_is_a_warning_with_its_fraction(speech):
    loud = np.clip(speech.samples * 8, -1.0, 1.0)
    found = check_content(speech.with_samples(loud))
    fraction = float(np.mean(np.abs(loud) >= 0.999))
    assert found.problem is None and found.clipped_fraction == pytest.approx(fraction) and fraction > 0.01
    assert f"{100 * fraction:.2g} %" in found.warning and not found.over_range


def test_float_input_beyond_full_scale_counts_as_clipped(speech):
    found = check_content(speech.with_samples(speech.samples * 8))
    assert found.problem is None and found.over_range and "beyond full scale" in found.warning


@pytest.mark.parametrize("card", ["codec2-3200", "rvq-6k", "opus-16k-wb"])
@pytest.mark.parametrize("signal", ["one sample", "digital silence", "DC offset"])
def test_delay_is_not_measurable_on_degenerate_input(card, signal):
    run = roundtrip(find_card(card).build(), _audio(CONTENT_CASES[signal][0]))
    assert run.measured_delay is None and run.delay_ok is None


# -- degenerate items in a run: failed rows with the reason; the rest is scored --------------


def test_degenerate_items_are_not_scored_and_the_run_goes_on(tmp_path, speech):
    data = tmp_path / "data"
    data.mkdir()
    save(speech, data / "good.wav")
    save(_audio([0.3]), data / "one_sample.wav")
    save(_audio(np.full(RATE, 0.5)), data / "dc.wav")
    save(_audio(np.zeros(RATE)), data / "silent.wav")
    save(speech.with_samples(np.clip(speech.samples * 8, -1, 1)), data / "clipped.wav")
    save(speech.with_samples(speech.samples[:, : int(0.3 * RATE)]), data / "short.wav")
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bad",
                "dataset": str(data),
                "workers": 0,
                "codecs": ["reference", "codec2-3200"],
                "metrics": ["si_sdr"],
                "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
                "cache": str(tmp_path / "cache"),
            }
        )
    )
    frame = evalkit.run(path)
    by_item = {item: rows for item, rows in frame.groupby("item_id")}
    assert (by_item["good"].status == "ok").all() and by_item["good"].reason.isna().all()
    for item, kind in (("one_sample", "shorter than"), ("dc", "constant"), ("silent", "near-silent")):
        rows = by_item[item]
        assert (rows.status == "failed").all() and rows.value.isna().all(), item
        assert rows.reason.str.contains("degenerate input").all() and rows.reason.str.contains(kind).all(), item
    clipped = by_item["clipped"]
    assert (clipped.status == "ok").all() and clipped.reason.str.startswith("input clipped").all()
    short = by_item["short"].set_index(["codec", "metric"])
    assert short.loc[("reference", "si_sdr"), "status"] == "ok"
    cost = short[short.index.get_level_values("metric").isin(["bitrate_kbps", "encode_rtf", "decode_rtf"])]
    assert (cost.status == "skipped").all() and cost.value.isna().all()
    assert cost.reason.str.contains(f"at least {MIN_COST_SECONDS:g} s").all()
    trips = roundtrips_frame(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "bad")
    by_trip = trips.set_index(["item_id", "codec"])
    assert (by_trip.loc["silent"].status == "failed").all() and by_trip.loc["short"].measured_delay.isna().all()
    assert not delay_check(trips).misaligned.any()


# -- the command line: one line and a non-zero exit, or an honest table -------------------------


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evalkit: error:"), err
    return err[0]


def test_roundtrip_of_one_sample_exits_with_a_clear_message(tmp_path, capsys):
    save(_audio([0.3]), tmp_path / "one_sample.wav")
    assert (
        main(["roundtrip", str(tmp_path / "one_sample.wav"), "--codec", "g722-64k", "-o", str(tmp_path / "o.wav")]) == 1
    )
    line = _one_line_error(capsys)
    assert "one_sample.wav" in line and "too short" in line and not (tmp_path / "o.wav").exists()


def test_roundtrip_of_dc_says_delay_not_measurable(tmp_path, capsys):
    save(_audio(np.full(RATE, 0.5)), tmp_path / "dc.wav")
    assert main(["roundtrip", str(tmp_path / "dc.wav"), "--codec", "codec2-3200", "-o", str(tmp_path / "o.wav")]) == 0
    out = capsys.readouterr()
    assert "measured not measurable (constant)" in out.out and "MISMATCH" not in out.out
    assert "constant signal" in out.err


def test_encode_of_one_sample_claims_no_bitrate(tmp_path, capsys):
    save(_audio([0.3]), tmp_path / "one.wav")
    assert main(["encode", str(tmp_path / "one.wav"), "--codec", "g722-64k", "-o", str(tmp_path / "o.evk")]) == 0
    assert "too short for a bitrate" in capsys.readouterr().out


@pytest.fixture
def stream_file(tmp_path, speech):
    save(speech, tmp_path / "in.wav")
    assert main(["encode", str(tmp_path / "in.wav"), "--codec", "opus-16k-wb", "-o", str(tmp_path / "s.evk")]) == 0
    return tmp_path / "s.evk"


def test_decode_with_another_card_of_the_backend_names_both_and_the_right_card(stream_file, tmp_path, capsys):
    capsys.readouterr()
    assert main(["decode", str(stream_file), "--codec", "opus-64k", "-o", str(tmp_path / "o.wav")]) == 1
    line = _one_line_error(capsys)
    assert "sample_rate=16000" in line and "sample_rate=48000" in line and "--codec opus-16k-wb" in line
    assert not (tmp_path / "o.wav").exists()


def test_decode_with_a_card_of_another_backend_names_the_card_that_wrote_it(stream_file, tmp_path, capsys):
    capsys.readouterr()
    assert main(["decode", str(stream_file), "--codec", "amr-wb-12k65", "-o", str(tmp_path / "o.wav")]) == 1
    line = _one_line_error(capsys)
    assert "written by codec backend 'opus'" in line and line.endswith("--codec opus-16k-wb")


def _crafted(data: bytes, header) -> bytes:
    """`data` with its header replaced by any JSON value, checksum recomputed."""
    stream = Bitstream.from_bytes(data, "opus")
    body = Bitstream("opus", {}, stream.packets).to_bytes()[:-4]
    at = 4 + 2 + len("opus")
    raw = json.dumps(header).encode()
    body = body[:at] + struct.pack(">H", len(raw)) + raw + body[at + 2 + 2 :]
    return body + struct.pack(">I", zlib.crc32(body))


CRAFTED_FILES = {
    "a JSON list as header": (lambda d: _crafted(d, [1, 2, 3]), "JSON array"),
    "a huge frame count": (
        lambda d: _crafted(d, {**Bitstream.from_bytes(d, "opus").header, "frames": 2**31}),
        "carry at most",
    ),
    "no configuration": (lambda d: _crafted(d, {"frames": 100}), "does not name its codec configuration"),
    "truncated": (lambda d: d[: len(d) // 3], "checksum"),
    "foreign bytes": (lambda d: b"RIFF" + bytes(100), "bad magic"),
    "another backend": (lambda d: Bitstream("g722", {"frames": 1}, [b"x"]).to_bytes(), "backend 'g722'"),
}


@pytest.mark.parametrize("case", list(CRAFTED_FILES))
def test_crafted_files_through_decode_give_one_line(stream_file, tmp_path, capsys, case):
    craft, message = CRAFTED_FILES[case]
    bad = tmp_path / "bad.evk"
    bad.write_bytes(craft(stream_file.read_bytes()))
    capsys.readouterr()
    assert main(["decode", str(bad), "--codec", "opus-16k-wb", "-o", str(tmp_path / "o.wav")]) == 1
    line = _one_line_error(capsys)
    assert str(bad) in line and message in line


@pytest.mark.parametrize("target", ["missing.evk", "."])
def test_unreadable_stream_files_give_one_line(tmp_path, capsys, target):
    assert main(["decode", str(tmp_path / target), "--codec", "opus-16k-wb", "-o", str(tmp_path / "o.wav")]) == 1
    assert "cannot read the bitstream file" in _one_line_error(capsys)


# -- the container: every length and count bounded by the bytes present -----------------------


def _raw(header: bytes, count: int, tail: bytes) -> bytes:
    body = b"EVKB" + bytes([1, 4]) + b"demo" + struct.pack(">H", len(header)) + header + struct.pack(">I", count) + tail
    return body + struct.pack(">I", zlib.crc32(body))


CONTAINER_CASES = {
    "a JSON number as header": (_raw(b"42", 0, b""), "JSON number"),
    "null as header": (_raw(b"null", 0, b""), "JSON null"),
    "deeply nested header": (_raw(b"[" * 60000 + b"]" * 5000, 0, b""), "not valid JSON"),
    "bytes that are not UTF-8": (_raw(b"\xff\xfe{", 0, b""), "not valid JSON"),
    "more packets than bytes": (_raw(b"{}", 2**32 - 1, b"\x00" * 8), "declares 4294967295 packets"),
    "a five-byte length": (_raw(b"{}", 1, b"\xff\xff\xff\xff\x01" + bytes(10)), "more than four bytes"),
    "a non-minimal length": (_raw(b"{}", 1, b"\x81\x00x"), "not minimal"),
    "a length past the end": (_raw(b"{}", 1, b"\x7fabc"), "truncated"),
    "trailing bytes": (_raw(b"{}", 1, b"\x01xyz"), "trailing"),
}


@pytest.mark.parametrize("case", list(CONTAINER_CASES))
def test_container_defects_are_codec_errors(case):
    data, message = CONTAINER_CASES[case]
    with pytest.raises(CodecError, match=message):
        Bitstream.from_bytes(data, "demo")


def test_a_packet_beyond_the_container_limit_is_refused_when_writing():
    with pytest.raises(CodecError, match="larger than"):
        Bitstream("demo", {}, [bytes((1 << 24) + 1)]).to_bytes()


def _identity_stream(**header) -> Bitstream:
    stream = Identity(RATE).encode_packets(_audio(_noise(0.5)))
    return Bitstream(stream.backend, {**stream.header, **header}, stream.packets)


HEADER_CASES = {
    "a huge frame count": ({"frames": 10**12}, "carry at most"),
    "a boolean frame count": ({"frames": True}, "no valid frame count"),
    "a negative frame count": ({"frames": -5}, "no valid frame count"),
    "a text frame count": ({"frames": "8000"}, "no valid frame count"),
    "a configuration that is a list": ({"config": [16000]}, "does not name its codec configuration"),
    "another sample rate": ({"config": {"sample_rate": 8000}}, "sample_rate=8000"),
    "far fewer frames than packets": ({"frames": 1}, "need 1"),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_header_defects_are_codec_errors_before_any_decoding(case):
    header, message = HEADER_CASES[case]
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match=message):
            Identity(RATE).decode_packets(_identity_stream(**header))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing the size of the declared audio was allocated


def test_a_configuration_mismatch_names_both_sides():
    with pytest.raises(StreamConfigError) as caught:
        Identity(8000).decode_packets(_identity_stream())
    assert "sample_rate=16000" in str(caught.value) and "sample_rate=8000" in str(caught.value)
    assert caught.value.stream_config == {"sample_rate": 16000}


def test_configuration_includes_defaults_and_leaves_out_weight_paths():
    from evalkit.codecs.opus import Opus

    assert Opus().config == Opus(bitrate=32000).config != Opus(bitrate=12000).config
    card = find_card("rvq-3k")
    assert "weights" not in card.build().config and card.build().config["sha256"] == card.sha256


def test_decode_refuses_what_is_not_bytes():
    with pytest.raises(CodecError, match="takes bytes"):
        Identity(RATE).decode("not bytes")


# -- each backend checks what its library is about to see --------------------------------------


def _stream(card: str, seconds: float = 0.5) -> tuple:
    codec = find_card(card).build()
    rate = codec.info.sample_rate
    native = Audio(white_noise(seconds, rate).samples * 0.3, rate)
    return codec, codec.encode_packets(native)


def _with(stream: Bitstream, header: dict | None = None, packets=None) -> Bitstream:
    return Bitstream(
        stream.backend, {**stream.header, **(header or {})}, stream.packets if packets is None else packets
    )


BACKEND_CASES = {
    "amr-nb: a packet whose size disagrees with its ToC": (
        "amr-nb-12k2",
        lambda s: _with(s, packets=[s.packets[0][:10]] + s.packets[1:]),
        "storage frame",
    ),
    "g711: an oversized packet": ("g711-mulaw", lambda s: _with(s, packets=[bytes(4000)] + s.packets[1:]), "bytes"),
    "mp3: an oversized packet": ("mp3-64k", lambda s: _with(s, packets=[bytes(5000)] + s.packets[1:]), "bytes"),
    "aac: a foreign AudioSpecificConfig": ("aac-64k", lambda s: _with(s, {"asc": "1190"}), "AudioSpecificConfig"),
    "aac: a config that is not text": ("aac-64k", lambda s: _with(s, {"asc": [1]}), "AudioSpecificConfig"),
    "speex: a header with another frame size": ("speex-nb-8k", lambda s: _with(s, {"frame_size": 10**6}), "frame_size"),
    "speex: a packet of another size": ("speex-nb-8k", lambda s: _with(s, packets=[b"x"] + s.packets[1:]), "bytes"),
    "codec2: another mode in the header": ("codec2-3200", lambda s: _with(s, {"mode": "700C"}), "mode 700C"),
    "lc3: another frame size in the header": ("lc3-16k-32kbps", lambda s: _with(s, {"frame_bytes": 400}), "400"),
    "pcm: an odd number of bytes": (
        "reference",
        lambda s: _with(s, packets=[s.packets[0][:-1]] + s.packets[1:]),
        "odd",
    ),
    "rvq: another codebook count in the header": ("rvq-3k", lambda s: _with(s, {"n_q": 12}), "n_q=12"),
}


@pytest.mark.parametrize("case", list(BACKEND_CASES))
def test_backend_specific_defects_are_codec_errors(case):
    card, damage, message = BACKEND_CASES[case]
    codec, stream = _stream(card)
    with pytest.raises(CodecError, match=message):
        codec.decode_packets(damage(stream))


def test_opus_packets_of_another_duration_are_refused():
    from evalkit.codecs.opus import Opus

    native = Audio(white_noise(0.5, 16000).samples * 0.3, 16000)
    twenty = Opus(16000, 16000).encode_packets(native)
    forty = Opus(16000, 16000, frame_ms=40).encode_packets(native)
    with pytest.raises(CodecError, match="holds 640 samples; this stream has 320-sample frames"):
        Opus(16000, 16000).decode_packets(
            _with(twenty, packets=forty.packets + forty.packets[: len(twenty.packets) - len(forty.packets)])
        )


def test_rvq_stream_of_another_card_names_the_codebooks():
    data = find_card("rvq-3k").build().encode(_audio(_noise(0.5)))
    with pytest.raises(StreamConfigError, match="n_q=6.*n_q=12"):
        find_card("rvq-6k").build().decode(data)
