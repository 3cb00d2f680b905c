"""Codec profiles: MAC counter, latency check, loss simulators, Opus FEC, storage and the CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.audio import resample
from evalkit.cards import load_cards
from evalkit.cli import main as cli_main
from evalkit.codecs import Codec, CodecInfo
from evalkit.codecs.bitstream import Bitstream
from evalkit.codecs.opus import Opus
from evalkit.errors import ConfigError
from evalkit.profile import (
    Bernoulli,
    CurvePoint,
    GilbertElliott,
    Profile,
    ProfileRun,
    burst_lengths,
    concealment_of,
    default_cards,
    drop_packets,
    loss_curve,
    loss_curves_frame,
    measure_complexity,
    measure_latency,
    profiles_frame,
    read_profile,
    repeat_last,
    write_profile,
    zero_fill,
)
from evalkit.profile.printout import parse_rates
from evalkit.store import StoreError, connect

ROOT = Path(__file__).resolve().parent.parent
CARDS = load_cards()
NO_TORCH = "torch is not installed (pip install torch==2.13.0, the CPU build) - MAC counting needs it"
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason=NO_TORCH)
needs_opus = pytest.mark.skipif(Opus.unavailable() is not None, reason=str(Opus.unavailable()))


# -- complexity ---------------------------------------------------------------------------------


def known_layers():
    """(layer, input, MACs worked out by hand)."""
    import torch
    from torch import nn

    x = torch.randn
    return [
        (nn.Linear(10, 20), x(3, 10), 3 * 10 * 20),
        (nn.Conv1d(4, 8, 5), x(1, 4, 100), 96 * 8 * 4 * 5),  # 96 output steps
        (nn.Conv1d(4, 8, 5, stride=2, dilation=2, groups=2), x(1, 4, 100), 46 * 8 * 2 * 5),
        (nn.ConvTranspose1d(4, 8, 5, stride=2), x(1, 4, 100), 100 * 4 * 8 * 5),  # every input x kernel
        (nn.GRU(10, 20, batch_first=True), x(1, 7, 10), 7 * 3 * 20 * (10 + 20)),
        (nn.LSTM(10, 20, batch_first=True), x(1, 7, 10), 7 * 4 * 20 * (10 + 20)),
        (nn.LSTM(10, 20, num_layers=2, bidirectional=True), x(7, 3, 10), 21 * 2 * 4 * 20 * (10 + 20 + 40 + 20)),
        (nn.LSTM(10, 20, proj_size=5), x(7, 1, 10), 7 * (4 * 20 * (10 + 5) + 20 * 5)),
    ]


@needs_torch
@pytest.mark.filterwarnings("ignore:LSTM with projections")
@pytest.mark.parametrize("index", range(8))
def test_mac_counter_on_layers_with_known_macs(index):
    from evalkit.profile import count_macs

    layer, example, macs = known_layers()[index]
    assert count_macs(layer, example) == macs


@needs_torch
def test_mac_counter_adds_up_a_model_and_counts_shared_layers_per_call():
    import torch
    from torch import nn

    from evalkit.profile import count_macs

    model = nn.Sequential(nn.Conv1d(1, 8, 4, stride=4), nn.ReLU(), nn.Flatten(0, 1))
    assert count_macs(model, torch.randn(1, 1, 64)) == 16 * 8 * 4
    linear = nn.Linear(8, 8, bias=False)
    twice = nn.Sequential(linear, nn.Tanh(), linear)
    assert count_macs(twice, torch.randn(5, 8)) == 2 * 5 * 64


class TinyNeural:
    """A stand-in neural codec: 16 kHz, a conv encoder (hop 160) and a GRU decoder."""

    def torch_modules(self):
        import torch
        from torch import nn

        encoder = nn.Conv1d(1, 32, 320, stride=160)
        decoder = nn.Sequential(nn.GRU(32, 64, batch_first=True))
        return {
            "encoder": (encoder, torch.randn(1, 1, 16160), 1.01),
            "decoder": (decoder, torch.randn(1, 100, 32), 1.0),
        }


@needs_torch
def test_codec_protocol_gives_params_and_macs_per_second():
    parts = measure_complexity(TinyNeural())
    assert parts["encoder"].params == 32 * 320 + 32
    assert parts["encoder"].macs_per_second == pytest.approx(100 * 32 * 320 / 1.01)
    assert parts["decoder"].params == 3 * 64 * (32 + 64) + 6 * 64
    assert parts["decoder"].macs_per_second == 100 * 3 * 64 * (32 + 64)


def test_dsp_codecs_have_no_torch_complexity_and_evalkit_imports_without_torch():
    assert measure_complexity(CARDS["reference"].build()) is None
    code = (
        "import sys, evalkit.cli, evalkit.profile.printout, evalkit.profile.database; sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_bad_torch_modules_protocol_is_a_config_error():
    class Broken:
        def torch_modules(self):
            return {"encoder": ("module", "example")}

    with pytest.raises(ConfigError, match="module, example, seconds"):
        measure_complexity(Broken())


# -- latency ------------------------------------------------------------------------------------


class DelayLine(Codec):
    """16-bit PCM delayed by `delay` samples while declaring `declared`: a known synthetic delay."""

    backend = "delay-line"

    def __init__(self, delay: int, declared: int | None = None, rate: int = 16000):
        self.delay, self.declared, self.rate = delay, delay if declared is None else declared, rate

    @property
    def info(self):
        return CodecInfo(self.backend, "test", "test", self.rate, 320, self.declared, None)

    def _encode(self, samples):
        pcm = (np.round(samples[0] * 32767)).astype("<i2")
        return {}, [pcm[i : i + 320].tobytes() for i in range(0, len(pcm), 320)]

    def _decode(self, header, packets):
        x = np.concatenate([np.frombuffer(p, "<i2") for p in packets]).astype(np.float32) / 32767
        return np.concatenate([np.zeros(self.delay, np.float32), x])


@pytest.mark.parametrize("delay", [0, 1, 37, 160, 441])
def test_latency_measurement_recovers_a_known_delay_exactly(speech, delay):
    latency = measure_latency(DelayLine(delay), speech)
    assert latency.measured_delay == delay and latency.ok
    assert latency.declared_ms == pytest.approx(1000 * (320 + delay) / 16000)
    assert latency.measured_ms == latency.declared_ms


def test_latency_mismatch_is_flagged(speech):
    latency = measure_latency(DelayLine(40, declared=45), speech)
    assert latency.measured_delay == 40 and latency.ok is False


# -- loss simulators ----------------------------------------------------------------------------

N_PACKETS = 400_000


def within(observed: float, expected: float, se: float, z: float = 4.0) -> bool:
    return abs(observed - expected) <= z * se


def batch_se(mask: np.ndarray, batches: int = 200) -> float:
    """Standard error of the loss rate from batch means (the losses are correlated in time)."""
    means = mask[: len(mask) // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(means.std(ddof=1) / math.sqrt(batches))


@pytest.mark.parametrize("rate", [0.01, 0.03, 0.05, 0.10, 0.20])
@pytest.mark.parametrize("model", ["bernoulli", "gilbert"])
def test_loss_simulator_reproduces_rate_and_mean_burst(model, rate):
    sim = Bernoulli(rate) if model == "bernoulli" else GilbertElliott.from_rate(rate, mean_burst=3.0)
    mask = sim.mask(N_PACKETS, seed=7)
    bursts = burst_lengths(mask)
    assert within(mask.mean(), rate, batch_se(mask))
    assert within(bursts.mean(), sim.mean_burst, bursts.std(ddof=1) / math.sqrt(len(bursts)))
    assert sim.mean_burst == pytest.approx(3.0 if model == "gilbert" else 1 / (1 - rate))


def test_gilbert_elliott_with_loss_in_both_states_has_its_stationary_rate():
    sim = GilbertElliott(p=0.02, r=0.2, loss_good=0.01, loss_bad=0.6)
    mask = sim.mask(N_PACKETS, seed=3)
    assert sim.rate == pytest.approx((0.2 * 0.01 + 0.02 * 0.6) / 0.22)
    assert within(mask.mean(), sim.rate, batch_se(mask))


def test_loss_masks_are_seeded_and_nested_across_rates():
    a, b = Bernoulli(0.05).mask(1000, 1), Bernoulli(0.05).mask(1000, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, Bernoulli(0.05).mask(1000, 2))
    assert np.all(Bernoulli(0.10).mask(1000, 1)[a])  # lost at 5 % -> lost at 10 %


def test_burst_lengths_and_drop_packets():
    mask = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)
    assert burst_lengths(mask).tolist() == [2, 1, 3]
    stream = Bitstream("x", {"frames": 1}, [bytes([i]) for i in range(9)])
    dropped = drop_packets(stream, mask).packets
    assert [p is None for p in dropped] == mask.tolist() and dropped[2] == b"\x02"


@pytest.mark.parametrize(
    "make",
    [lambda: Bernoulli(1.5), lambda: GilbertElliott.from_rate(0.1, mean_burst=0.5), lambda: GilbertElliott(0, 0)],
)
def test_impossible_loss_models_are_config_errors(make):
    with pytest.raises(ConfigError):
        make()


def test_concealment_helpers():
    assert repeat_last([None, b"a", None, None, b"b", None]) == [None, b"a", b"a", b"a", b"b", b"b"]
    out = zero_fill([np.ones(3), None, np.full((1, 2), 2.0)], frame_samples=4)
    assert out.tolist() == [[1, 1, 1, 0, 0, 0, 0, 2, 2]]
    assert concealment_of(CARDS["reference"].build()) == "codec"

    def declaring(strategy):
        info = dataclasses.replace(CARDS["reference"].build().info, concealment=strategy)
        return type("Neural", (), {"info": info})()

    assert concealment_of(declaring("repeat")) == "repeat"
    with pytest.raises(ConfigError):
        concealment_of(declaring("magic"))


# -- Opus in-band FEC ---------------------------------------------------------------------------


def fec_pair():
    fec = CARDS["opus-24k-fec"].build()
    plain = Opus(**{**CARDS["opus-24k-fec"].params, "fec": False})
    return fec, plain


def segment_snr(codec, speech, lost_index: int) -> float:
    """SNR (dB) of the frame decoded in place of a lost packet, against the same codec's clean decode."""
    stream = codec.encode_packets(resample(speech, codec.info.sample_rate))
    clean = codec.decode_packets(stream).samples[0]
    mask = np.arange(len(stream.packets)) == lost_index
    lossy = codec.decode_packets(drop_packets(stream, mask)).samples[0]
    frame = codec.info.frame_samples
    part = slice(lost_index * frame, (lost_index + 1) * frame)
    return float(10 * np.log10(np.sum(clean[part] ** 2) / np.sum((clean[part] - lossy[part]) ** 2)))


@needs_opus
def test_opus_fec_recovers_a_lone_lost_frame_from_the_next_packet(speech):
    fec, plain = fec_pair()
    recovered = [segment_snr(fec, speech, i) for i in (40, 60, 80)]
    concealed = [segment_snr(plain, speech, i) for i in (40, 60, 80)]
    assert min(recovered) > 5 and min(recovered) > max(concealed) + 3, (recovered, concealed)


@needs_opus
def test_opus_with_in_band_fec_degrades_less_at_10_percent_loss(speech):
    def mean_score(codec):
        points = loss_curve(codec, speech, rates=(0.10,), models=("bernoulli",), seeds=range(3))
        lossy = [p for p in points if p.loss_model == "bernoulli"]
        assert all(p.status == "ok" for p in points), [p.reason for p in points]
        assert all(p.lost_fraction > 0.05 for p in lossy)
        return np.mean([p.value for p in lossy]), points[0].value

    (fec_lossy, fec_clean), (plain_lossy, plain_clean) = (mean_score(c) for c in fec_pair())
    # FEC spends bits on redundancy (a little worse without loss) and wins clearly with it.
    assert fec_lossy > plain_lossy + 0.5
    assert fec_clean - fec_lossy < plain_clean - plain_lossy


# -- storage and the command line ---------------------------------------------------------------


def a_profile(**changes) -> Profile:
    fields = dict(
        codec="opus-6k",
        codec_hash="h1",
        codec_version="libopus 1.6.1",
        backend="opus",
        family="opus",
        sample_rate=16000,
        nominal_bitrate=6000.0,
        params_encoder=None,
        params_decoder=None,
        macs_encoder_per_s=None,
        macs_decoder_per_s=None,
        encode_rtf=0.01,
        decode_rtf=0.001,
        encode_cpu_s_per_hour=36.0,
        decode_cpu_s_per_hour=3.6,
        peak_memory_mb=130.0,
        working_memory_mb=0.5,
        frame_samples=320,
        declared_delay=104,
        measured_delay=103,
        declared_latency_ms=26.5,
        measured_latency_ms=26.4375,
        latency_ok=True,
        streaming=True,
        concealment="codec",
        audio_seconds=10.0,
        repeats=5,
        packages={"av": "18.1.0"},
    )
    return Profile(**{**fields, **changes})


def curve() -> list[CurvePoint]:
    return [
        CurvePoint("none", 0.0, 0.0, 0, 0.0, "pesq_wb", "1", 4.1, "ok", "", "pesq", "0.0.4"),
        CurvePoint("gilbert", 0.1, 3.0, 0, 0.11, "pesq_wb", "1", 2.3, "ok", "", "pesq", "0.0.4"),
        CurvePoint("bernoulli", 0.2, 1.25, 0, 0.2, "pesq_wb", "1", None, "failed", "decoder crashed"),
    ]


def test_profiles_are_stored_and_read_back(engine):
    write_profile(engine, ProfileRun(a_profile(encode_rtf=0.5), curve()))
    write_profile(engine, ProfileRun(a_profile(), curve()))  # a re-profile replaces the row
    write_profile(
        engine,
        ProfileRun(
            a_profile(
                codec="neural",
                params_encoder=3_000_000_000,
                macs_encoder_per_s=1.5e9,
                latency_ok=None,
                measured_delay=None,
            ),
            [],
        ),
    )
    assert read_profile(engine, "opus-6k", "h1") == a_profile()
    assert read_profile(engine, "neural", "h1").params_encoder == 3_000_000_000
    assert read_profile(engine, "opus-6k", "other") is None
    assert profiles_frame(engine)["codec"].tolist() == ["neural", "opus-6k"]
    points = loss_curves_frame(engine, "opus-6k")
    assert len(points) == 3 and points.set_index("loss_model").loc["bernoulli", "reason"] == "decoder crashed"


def test_loss_curve_rows_keep_the_failure_rules(engine):
    bad = CurvePoint("bernoulli", 0.1, 1.1, 0, 0.1, "pesq_wb", "1", None, "ok", "")
    with pytest.raises(StoreError, match="loss_curves"):
        write_profile(engine, ProfileRun(a_profile(), [bad]))
    assert profiles_frame(engine).empty  # one transaction: nothing half-written


def test_parse_rates_and_default_cards():
    assert parse_rates("1, 3,10") == [0.01, 0.03, 0.10]
    for text in ("", "0", "100", "ten"):
        with pytest.raises(ConfigError):
            parse_rates(text)
    chosen = default_cards(CARDS)
    families = [card.build().info.family for card in chosen]
    assert "reference" in [card.name for card in chosen] and len(families) == len(set(families))


@pytest.mark.slow
def test_cli_profiles_the_reference_card(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'evalkit.db'}"
    argv = [
        "profile",
        "--codec",
        "reference",
        "--database",
        url,
        "--seconds",
        "3",
        "--loss-rates",
        "10",
        "--repeats",
        "2",
    ]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "20.00 ms algorithmic" in out and "pesq_wb" in out and "10%" in out
    engine = connect(url)
    stored = profiles_frame(engine)
    assert stored["codec"].tolist() == ["reference"] and stored["encode_rtf"].iloc[0] > 0
    assert set(loss_curves_frame(engine)["loss_model"]) == {"none", "bernoulli", "gilbert"}
    engine.dispose()


def test_cli_refuses_an_unknown_card(tmp_path, capsys):
    assert cli_main(["profile", "--codec", "nope", "--database", f"sqlite:///{tmp_path / 'x.db'}"]) == 1
    assert "unknown codec 'nope'" in capsys.readouterr().err


def test_the_profiles_table_takes_its_columns_from_the_profile_dataclass():
    """Profile is the one list of the table's columns: names, nullability (`X | None`) and types."""
    from evalkit.profile.profile_row import Profile
    from evalkit.store.models_profile import CodecProfile

    table = CodecProfile.__table__
    fields = {field.name: field for field in dataclasses.fields(Profile)}
    assert set(table.columns.keys()) == set(fields) | {"id", "created_at"}
    for name, field in fields.items():
        assert table.columns[name].nullable == ("| None" in str(field.type) or name == "packages"), name
    assert table.columns["params_encoder"].type.__visit_name__ == "big_integer"
    assert table.columns["concealment"].type.length == 32


def test_cli_refuses_too_little_speech_and_says_when_it_has_less_than_asked(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli_main(["profile", "--codec", "g711-alaw", "--seconds", "0.05", "--no-loss", "--database", url]) == 1
    assert "--seconds 0.05: profiles need at least 0.5 s of speech" in capsys.readouterr().err
    argv = ["profile", "--codec", "g711-alaw", "--seconds", "100000", "--no-loss", "--repeats", "1", "--database", url]
    assert cli_main(argv) == 0
    assert "note: the demo speech lasts" in capsys.readouterr().err
