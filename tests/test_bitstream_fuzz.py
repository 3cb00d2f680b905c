"""Fuzz every registered codec backend's decoder: truncations, bit flips and crafted streams.

Hypothesis (seeded, a bounded number of examples per backend) derives inputs from a valid
stream of each backend; a separate process (tests/fuzz_codecs.py) decodes them, so a crash in
a C library fails the test with the input named instead of killing pytest. Every outcome must
be decoded audio or a one-line CodecError, never another exception, a crash, a hang, or an
allocation above the stream's budget (4x its declared audio; see fuzz_codecs.budget).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.cards import load_cards
from evalkit.codecs import BACKENDS, Bitstream

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_codecs import TINY_BUILDERS  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("EVALKIT_FUZZ_EXAMPLES", "20"))  # per backend and kind of damage; about 2 min in all
DECODE_TIMEOUT = 60  # seconds for one decode before it counts as a hang
RSS_SLACK = 64 << 20  # allocator and library noise the resident set may show beyond the budget
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def _specs() -> list:
    """One fuzz target per registered backend: its first available card, else a tiny model."""
    cards = load_cards()
    params = []
    for name in BACKENDS.names():
        reason = BACKENDS.get(name).unavailable()
        card = next((c.name for c in sorted(cards.values(), key=lambda c: c.name) if c.backend == name), None)
        spec = f"card:{card}" if card else f"tiny:{name}" if name in TINY_BUILDERS else f"none:{name}"
        marks = [pytest.mark.skip(reason=f"{name} is unavailable here: {reason}")] if reason else []
        params.append(pytest.param(spec, id=name, marks=marks))
    return params


class Decoder:
    """The decoding process: restarted after a crash, so one bad input fails one example only."""

    def __init__(self, log: Path):
        self.log, self.process, self.spec, self.stream = log, None, None, b""

    def use(self, spec: str) -> bytes:
        if self.spec != spec or self.process is None:  # (re)start after a crash, too
            self._start()
            answer = self._ask({"op": "build", "spec": spec}, timeout=300)
            if answer is None:
                pytest.fail(f"building {spec} for fuzzing crashed the decoder process: {self._tail()}")
            self.spec, self.stream = spec, base64.b64decode(answer["stream"])
        return self.stream

    def decode(self, data: bytes, spec: str, saved: Path) -> dict:
        self.use(spec)
        answer = self._ask({"op": "decode", "data": base64.b64encode(data).decode()}, DECODE_TIMEOUT)
        if answer is None:
            saved.write_bytes(data)
            code = self.process.poll()
            self.close()
            how = "hung" if code is None else f"died with status {code}"
            pytest.fail(f"{spec}: the decoder process {how} on {_name(data)} (saved as {saved}): {self._tail()}")
        return answer

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def _start(self) -> None:
        self.close()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("fuzz_codecs.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),
            env=env,
            cwd=ROOT,
        )

    def _ask(self, request: dict, timeout: float) -> dict | None:
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.process.kill()
            return None
        return json.loads(line)

    def _tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "no message"


def _name(data: bytes) -> str:
    return f"{len(data)} bytes sha256 {hashlib.sha256(data).hexdigest()[:16]} starting {data[:48].hex()}"


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    process = Decoder(tmp_path_factory.mktemp("fuzz") / "decoder.log")
    yield process
    process.close()


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def _check(decoder: Decoder, spec: str, data: bytes, tmp: Path, must_fail: bool) -> None:
    answer = decoder.decode(data, spec, tmp / f"{spec.replace(':', '-')}-{hashlib.sha256(data).hexdigest()[:12]}.evk")
    outcome = answer["outcome"]
    assert outcome in ("ok", "CodecError"), f"{spec}: {outcome} on {_name(data)}"
    assert not (must_fail and outcome == "ok"), f"{spec}: a damaged stream decoded: {_name(data)}"
    assert answer["peak"] <= answer["budget"], (
        f"{spec}: allocated {answer['peak']} > {answer['budget']} bytes on {_name(data)}"
    )
    assert answer["rss_growth"] <= answer["budget"] + RSS_SLACK, (
        f"{spec}: resident set grew {answer['rss_growth']} bytes on {_name(data)}"
    )


def _target(decoder: Decoder, spec: str) -> bytes:
    if spec.startswith("none:"):
        pytest.fail(
            f"backend {spec[5:]} has no codec card and no tiny model in tests/fuzz_codecs.py "
            "(TINY_BUILDERS): add one so its decoder is fuzzed"
        )
    return decoder.use(spec)


@pytest.mark.parametrize("spec", _specs())
def test_decoder_refuses_damaged_streams(decoder, tmp_path_factory, spec):
    """Truncations, bit flips and crafted streams with valid checksums, for one backend."""
    stream = _target(decoder, spec)
    tmp = tmp_path_factory.getbasetemp()
    _truncated(decoder, spec, stream, tmp)
    _flipped(decoder, spec, stream, tmp)
    _crafted(decoder, spec, Bitstream.from_bytes(stream, _backend_of(stream)), tmp)


# Choices come from a seeded random.Random that hypothesis draws: spread evenly over the
# stream and over the kinds of damage, where hypothesis's own choices would heap at the simplest.
RANDOM = st.randoms(use_true_random=False)


@FUZZ
@given(rnd=RANDOM)
def _truncated(decoder, spec, stream, tmp, rnd):
    cut = stream[: rnd.randrange(len(stream))]
    if rnd.random() < 0.5 and len(cut) > 4:  # half of them with a checksum that fits the cut
        cut = _with_crc(cut[:-4])
    _check(decoder, spec, cut, tmp, must_fail=True)


@FUZZ
@given(rnd=RANDOM)
def _flipped(decoder, spec, stream, tmp, rnd):
    stream = bytearray(stream)
    bits = sorted({rnd.randrange(8 * (len(stream) - 4)) for _ in range(rnd.randint(1, 6))})
    refit_crc = rnd.random() < 0.7
    for bit in bits:
        stream[bit // 8] ^= 0x80 >> bit % 8
    damaged = _with_crc(bytes(stream[:-4])) if refit_crc else bytes(stream)
    # Without a fresh checksum, one or two flipped bits are always caught by the CRC-32.
    _check(decoder, spec, damaged, tmp, must_fail=not refit_crc and len(bits) <= 2)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HUGE = st.sampled_from([2**31, 2**32 + 5, 10**12, 2**63, 10**30, -1, 0])


@st.composite
def crafted(draw, stream: Bitstream) -> bytes:
    """A stream with a valid checksum whose header or packets were changed."""
    header, packets = dict(stream.header), list(stream.packets)
    rnd = draw(RANDOM)
    kind = rnd.choice(
        ["payload", "payload", "payload", "header", "key", "frames", "config", "packets", "sizes", "count"]
    )
    if kind == "payload":  # the structure intact, the codec's own bytes random: for the decoder libraries
        for index in rnd.sample(range(len(packets)), rnd.randint(1, len(packets))):
            packets[index] = rnd.randbytes(len(packets[index]))
    elif kind == "header":
        header = draw(JSON)
    elif kind == "key":
        header[draw(st.sampled_from(sorted(header)) | st.text(max_size=6))] = draw(JSON)
    elif kind == "frames":
        header["frames"] = draw(HUGE | st.integers(1, 10 * stream.header["frames"]))
    elif kind == "config":
        config = dict(header["config"])
        config[draw(st.sampled_from(sorted(config)) if config else st.text(max_size=6))] = draw(JSON)
        header["config"] = config
    elif kind == "packets":
        packets = draw(st.lists(st.sampled_from(packets) | st.binary(max_size=64), max_size=3 * len(packets) + 8))
    elif kind == "sizes":
        index = draw(st.integers(0, len(packets) - 1))
        packets[index] = draw(st.binary(max_size=4 * max(len(p) for p in packets) + 8))
    else:  # a packet count that the bytes cannot hold, checksum intact
        data = Bitstream(stream.backend, header, packets).to_bytes()
        return _with_crc(_replace_count(data, draw(HUGE | st.integers(0, 3 * len(packets))), len(stream.backend)))
    if not isinstance(header, dict):
        return _with_crc(_replace_header(Bitstream(stream.backend, {}, packets).to_bytes(), header, stream.backend))
    return Bitstream(stream.backend, header, packets).to_bytes()


def _replace_count(data: bytes, count: int, name_len: int) -> bytes:
    at = 4 + 2 + name_len
    (header_len,) = struct.unpack(">H", data[at : at + 2])
    at += 2 + header_len
    return data[:at] + struct.pack(">I", count % 2**32) + data[at + 4 : -4]


def _replace_header(data: bytes, header, backend: str) -> bytes:
    """`data` (whose header is {}) with any JSON value as its header, checksum not yet added."""
    at = 4 + 2 + len(backend)
    raw = json.dumps(header).encode()[:0xFFFF]
    return data[:at] + struct.pack(">H", len(raw)) + raw + data[at + 2 + 2 : -4]


@FUZZ
@given(data=st.data())
def _crafted(decoder, spec, parsed, tmp, data):
    _check(decoder, spec, data.draw(crafted(parsed)), tmp, must_fail=False)


def _backend_of(data: bytes) -> str:
    return data[6 : 6 + data[5]].decode("ascii")
