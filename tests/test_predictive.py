"""Predictive coding of cepstra: the closed loop, residual quantizers, range-coded packets, allocations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("constriction")

from evalkit.errors import CodecError  # noqa: E402
from evalkit.predictive.coder import MODEL_SIZES, PACKET_FRAMES, PITCH_FIELDS, CepstralCoder, ModelSet, Packet  # noqa: E402
from evalkit.predictive.predictor import NB_CEPSTRA, Predictor  # noqa: E402
from evalkit.predictive.residual import Allocation, Codebooks, FrameCode, ResidualQuantizer  # noqa: E402


def _cepstra(frames: int, seed: int) -> np.ndarray:
    """A stationary AR(1) process with occasional jumps, roughly at the scale of real cepstra."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(1.0, 0.15, NB_CEPSTRA)
    mean = np.r_[20.0, 5.0, -2.0, np.zeros(NB_CEPSTRA - 3)]
    x, out = mean.copy(), []
    for _ in range(frames):
        jump = 6.0 if rng.random() < 0.05 else 1.0
        x = mean + 0.95 * (x - mean) + jump * scale * rng.standard_normal(NB_CEPSTRA)
        out.append(x)
    return np.array(out)


@pytest.fixture(scope="module")
def random_parts():
    return _random_parts()


def _random_parts():
    """A random predictor (torch init), codebooks of sampled residuals and rough symbol counts."""
    torch = pytest.importorskip("torch")
    from evalkit.predictive.network import FramePredictor, predictor_arrays

    torch.manual_seed(0)
    model = FramePredictor()
    x = _cepstra(4000, 1)
    model.mean.copy_(torch.from_numpy(x.mean(axis=0)).float())
    model.std.copy_(torch.from_numpy(x.std(axis=0)).float())
    with torch.no_grad():
        model.out.weight.mul_(0.05)  # near "repeat the previous frame", as a trained predictor starts out
        model.out.bias.zero_()
    arrays = predictor_arrays(model)
    residuals = _open_loop_residuals(arrays, _cepstra(6000, 2))
    rng = np.random.default_rng(2)
    pick = lambda rows, n: rows[rng.choice(len(rows), n, replace=False)]  # noqa: E731  (codebooks of samples)
    shape = residuals[:, 1:]
    small = shape[np.abs(shape).sum(axis=1) < np.median(np.abs(shape).sum(axis=1))]
    books = Codebooks(
        np.quantile(residuals[:, 0], np.linspace(0, 1, 256)),
        np.quantile(residuals[:, 0], np.linspace(0.2, 0.8, 16)),
        pick(shape, 1024),
        0.3 * (pick(shape, 1024) - pick(shape, 1024)),
        pick(small, 512),
    )
    counts = {name: rng.integers(1, 50, size) for name, size in MODEL_SIZES.items()}
    return model, arrays, books, ModelSet(counts)


def _open_loop_residuals(arrays: dict, x: np.ndarray) -> np.ndarray:
    predictor, out = Predictor(arrays), []
    for frame in x:
        out.append(frame - predictor.predict())
        predictor.update(frame)
    return np.array(out)


def _coder(parts, allocation: Allocation) -> CepstralCoder:
    _, arrays, books, models = parts
    return CepstralCoder(arrays, ResidualQuantizer(books, allocation), models)


def test_numpy_predictor_runs_the_torch_models_arithmetic(random_parts):
    import torch

    model, arrays, _, _ = random_parts
    x = _cepstra(60, 3)
    inputs = np.vstack([arrays["mean"][None].astype(np.float64), x[:-1]])
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(inputs[None]).float())
    predictor, got = Predictor(arrays), []
    for frame in x:
        got.append(predictor.predict())
        predictor.update(frame)
    assert np.allclose(np.array(got), expected[0].numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "allocation", [Allocation(0.8, 10.6), Allocation(-1, -1), Allocation(1e9, 1e9), Allocation(0.5, 3.0, frame_step=2)]
)
def test_closed_loop_decoding_equals_the_encoders_reconstruction_bit_for_bit(random_parts, allocation):
    coder = _coder(random_parts, allocation)
    x = _cepstra(200, 4)
    codes, reconstruction = coder.analyse(x)
    assert len(codes) == 200 // PACKET_FRAMES and all(len(c) == PACKET_FRAMES // allocation.frame_step for c in codes)
    packets = [coder.packet_bytes(Packet(None, c)) for c in codes]
    decoded = [coder.read_packet(p, with_pitch=False).codes for p in packets]
    assert decoded == codes
    assert np.array_equal(coder.synthesise(decoded), reconstruction)  # bit for bit, not merely close
    if allocation.vq_threshold == 10.6:  # about the median residuals of this random predictor
        assert {c.c0_fine for p in codes for c in p} == {0, 1} and {c.vq_fine for p in codes for c in p} == {0, 1}


def test_frame_step_two_interpolates_the_skipped_frames(random_parts):
    coder = _coder(random_parts, Allocation(-1, -1, frame_step=2))
    _, reconstruction = coder.analyse(_cepstra(40, 5))
    skipped, coded = reconstruction[2::2], reconstruction[1::2]
    assert np.allclose(skipped, 0.5 * (coded[:-1] + coded[1:]))


def test_packets_with_pitch_round_trip(random_parts):
    coder = _coder(random_parts, Allocation(0.8, 3.5))
    codes, _ = coder.analyse(_cepstra(80, 6))
    rng = np.random.default_rng(7)
    for c in codes:
        packet = Packet({name: int(rng.integers(0, size)) for name, size in PITCH_FIELDS}, c)
        assert coder.read_packet(coder.packet_bytes(packet), with_pitch=True) == packet


def test_lost_packets_are_extrapolated_by_the_predictor(random_parts):
    coder = _coder(random_parts, Allocation(1.0, 4.0))
    x = _cepstra(80, 8)
    codes, reconstruction = coder.analyse(x)
    lossy = list(codes)
    lossy[5] = None
    out = coder.synthesise(lossy)
    assert np.array_equal(out[:20], reconstruction[:20]) and np.isfinite(out).all()
    assert not np.array_equal(out[20:24], reconstruction[20:24])


def test_garbage_packets_decode_to_valid_codes_or_raise(random_parts):
    coder = _coder(random_parts, Allocation(1.0, 4.0))
    rng = np.random.default_rng(9)
    for _ in range(100):
        data = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
        try:
            packet = coder.read_packet(data, with_pitch=True)
        except CodecError:
            continue
        assert all(0 <= c.c0 < 256 and 0 <= c.vq1 < 1024 for c in packet.codes)
    with pytest.raises(CodecError, match="longer"):
        coder.read_packet(bytes(500), with_pitch=True)


def test_torch_quantizer_takes_the_same_decisions(random_parts):
    import torch

    from evalkit.predictive.network import TorchQuantizer

    _, _, books, _ = random_parts
    allocation = Allocation(1.0, 4.0)
    residuals = np.random.default_rng(10).normal(0, 1, (300, NB_CEPSTRA)) * np.linspace(2, 0.3, NB_CEPSTRA)
    numpy_side = ResidualQuantizer(books, allocation)
    expected = np.array([numpy_side.quantize(r)[1] for r in residuals])
    got, _, _ = TorchQuantizer(books)(torch.from_numpy(residuals).float(), torch.tensor(1.0), torch.tensor(4.0))
    assert np.mean(np.all(np.abs(got.numpy() - expected) < 1e-4, axis=1)) > 0.97  # float32 ties aside


def test_quantizer_allocation_follows_the_thresholds(random_parts):
    _, _, books, _ = random_parts
    quantizer = ResidualQuantizer(books, Allocation(1.0, 4.0))
    small = np.r_[0.5, np.full(17, 0.1)]
    large = np.r_[3.0, np.full(17, 0.5)]
    assert quantizer.quantize(small)[0] == FrameCode(
        0, quantizer.quantize(small)[0].c0, 0, quantizer.quantize(small)[0].vq1, -1
    )
    code = quantizer.quantize(large)[0]
    assert code.c0_fine == 1 and code.vq_fine == 1 and code.vq2 >= 0


def test_tiny_codec_round_trips_real_bytes(tmp_path):
    """The fuzz test's tiny codec (random predictor and vocoder): the decoder's cepstra are the
    encoder's closed-loop reconstruction; a stream of another allocation is refused."""
    import sys
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from fuzz_codecs import _seed_audio, _tiny_predictive

    from evalkit.audio import Audio

    codec = _tiny_predictive(tmp_path)
    assert len(codec.info.version) <= 64  # what the results store keeps
    samples = np.tile(_seed_audio(16000), 6)
    packets, reconstruction = codec.encode_features(codec.features(samples))
    decoded, leading = codec.decode_features(packets)
    assert leading == 0 and np.array_equal(decoded[:, :NB_CEPSTRA], reconstruction)
    stream = codec.encode_packets(Audio(samples[None], 16000))
    assert stream.payload_bytes == sum(len(p) for p in stream.packets) > 0
    out = codec.decode_packets(stream)
    assert out.samples.shape == (1, len(samples) + codec.info.lookahead_samples) and np.isfinite(out.samples).all()
    with pytest.raises(CodecError, match="configured"):
        codec.decode_packets(replace(stream, header={**stream.header, "allocation": "s2-fine15"}))


SHIPPED = Path(__file__).resolve().parent.parent / "codecs" / "weights" / "predictive-16k-v1.npz"


def _held_out_features(count: int = 4) -> list[np.ndarray]:
    """LPCNet features of demo items of `count` speakers (none of them in training), at -26 LUFS as in training."""
    from evalkit.audio import loudness, resample, to_mono
    from evalkit.datasets import load_dataset
    from evalkit.lpcnet.features import RATE, features

    items, seen = [], set()
    for item in load_dataset(Path(__file__).resolve().parent.parent / "data" / "demo" / "manifest.jsonl"):
        if item.speaker not in seen and len(seen) < count:
            seen.add(item.speaker)
            audio = to_mono(resample(item.load(), RATE))
            items.append(features(audio.samples[0] * 10 ** ((-26.0 - loudness(audio)) / 20)))
    return items


def test_shipped_predictor_lowers_residual_energy_on_held_out_speakers():
    from evalkit.predictive.model import load_bundle

    arrays = load_bundle(SHIPPED).predictor_arrays()
    energy = {"zero": 0.0, "previous_frame": 0.0, "predictor": 0.0}
    for feats in _held_out_features():
        ceps = feats[:, :NB_CEPSTRA].astype(np.float64)
        residuals = _open_loop_residuals(arrays, ceps)[1:]
        energy["zero"] += float(np.sum(ceps[1:] ** 2))
        energy["previous_frame"] += float(np.sum(np.diff(ceps, axis=0) ** 2))
        energy["predictor"] += float(np.sum(residuals**2))
    assert energy["predictor"] < 0.05 * energy["zero"]
    # On these unseen speakers the CPU-trained predictor is only 2 % below repeating the previous
    # frame (0.98; 0.69 on held-out items of the training speakers): see docs/neural.md.
    assert energy["predictor"] < energy["previous_frame"]


@pytest.mark.slow
def test_training_pipeline_resumes_and_exports_a_codec_bundle(tmp_path):
    """train.py's stages on synthetic cepstra (a few steps each), then rates.py's allocations: the
    bundle loads, its allocation codes and decodes, and a second run resumes instead of retraining."""
    from evalkit.predictive import train
    from evalkit.predictive.model import load_bundle
    from evalkit.predictive.rates import add_allocations

    rng = np.random.default_rng(0)
    features = {
        f"item{i}": np.c_[_cepstra(300, i), rng.uniform(40, 200, (300, 1)), rng.uniform(0, 1, (300, 1))]
        for i in range(24)
    }
    np.savez(tmp_path / "features.npz", **{k: v.astype(np.float32) for k, v in features.items()})
    argv = [
        "--features",
        str(tmp_path / "features.npz"),
        "--out",
        str(tmp_path / "model.npz"),
        "--teacher-steps",
        "6",
        "--scheduled-steps",
        "3",
        "--batch",
        "4",
        "--frames",
        "30",
        "--codebook-batches",
        "1",
    ]
    train.main(argv)
    log = (tmp_path / "predictive-train.log").read_text()
    assert "held-out residual energy" in log
    train.main(argv)  # everything on disk: resumes at the end, trains nothing again
    assert (tmp_path / "predictive-train.log").read_text().count("training items") == 1
    bundle = load_bundle(tmp_path / "model.npz")
    items = [features[f"item{i}"] for i in range(4)]
    bundle = add_allocations(bundle, items, items, log=lambda _: None, allocations=((1, 50), (2, 100)))
    assert [a["name"] for a in bundle.config["allocations"]] == ["s1-fine50", "s2-fine100"]
    entry, allocation, models = bundle.allocation("s1-fine50")
    coder = CepstralCoder(bundle.predictor_arrays(), ResidualQuantizer(bundle.codebooks(), allocation), models)
    codes, reconstruction = coder.analyse(items[0][:200, :NB_CEPSTRA])
    packets = [coder.packet_bytes(Packet(None, c)) for c in codes]
    assert 8 * sum(map(len, packets)) > 0 and entry["bitrate"] > 0
    assert np.array_equal(
        coder.synthesise([coder.read_packet(p, with_pitch=False).codes for p in packets]), reconstruction
    )
