"""LPCNet-style codec: features, pitch, filters, the 64-bit quantizer, the vocoder and the codec backend.

Codec tests build tiny random-weight vocoders and random codebooks here; the shipped cards run
through tests/test_codec_contract.py.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import freqz, lfilter

from evalkit.audio import Audio
from evalkit.codecs import Bitstream
from evalkit.errors import CodecError, ConfigError
from evalkit.harness import roundtrip
from evalkit.lpcnet.features import FRAME, LOOKAHEAD, PREEMPHASIS, SCALE, features, lpc_from_cepstrum
from evalkit.lpcnet.filters import allpole, allpole_adjoint, fir
from evalkit.lpcnet.quantizer import FIELDS, PACKET_BYTES, Codebooks, PacketQuantizer, pack_fields, unpack_fields

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_codecs import LPCNET_TINY, tiny_lpcnet_weights  # noqa: E402  the fuzz test's tiny models
from fuzz_codecs import random_lpcnet_codebooks as random_codebooks  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional dependency
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

RATE = 16000


def glottal_vowel(f0: float, seconds: float = 1.0) -> np.ndarray:
    """Rosenberg glottal pulses at exactly f0 (fractional periods), differentiated (lip radiation),
    through three vowel formants."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = (t * f0) % 1.0
    opening, closing = 0.4, 0.16
    pulse = np.where(
        phase < opening,
        0.5 * (1 - np.cos(np.pi * phase / opening)),
        np.where(phase < opening + closing, np.cos(0.5 * np.pi * (phase - opening) / closing), 0.0),
    )
    a = [1.0]
    for freq, bandwidth in ((700, 80), (1220, 90), (2600, 120)):
        r = np.exp(-np.pi * bandwidth / RATE)
        a = np.convolve(a, [1, -2 * r * np.cos(2 * np.pi * freq / RATE), r * r])
    x = lfilter([1], a, np.diff(pulse, prepend=0.0))
    return 0.3 * x / np.max(np.abs(x))


# -- features ------------------------------------------------------------------------------


def test_cepstrum_to_lpc_to_synthesis_reconstructs_an_all_pole_signal():
    poles = []
    for freq, radius in ((600, 0.85), (1800, 0.8), (3500, 0.75)):
        w = 2 * np.pi * freq / RATE
        poles += [radius * np.exp(1j * w), radius * np.exp(-1j * w)]
    a = np.real(np.poly(poles))
    drive = 0.01 * np.random.default_rng(0).standard_normal(RATE)
    xp = lfilter([1], a, drive)  # the pre-emphasised signal is all-pole
    feats, lpc, rms = features(lfilter([1], [1, -PREEMPHASIS], xp), with_lpc=True)
    derived, gain = lpc_from_cepstrum(feats[:, :18])
    assert np.allclose(derived, lpc, atol=1e-4) and np.allclose(gain, rms, rtol=1e-4)  # from the float32 features

    _, true = freqz([1], a, worN=128, fs=RATE)
    errors = []
    for k in range(5, len(feats) - 5):
        _, h = freqz([1], np.r_[1, lpc[k]], worN=128, fs=RATE)
        errors.append(20 * np.log10(np.abs(h) * rms[k]) - 20 * np.log10(np.abs(true) * 0.01 * SCALE))
    assert np.sqrt(np.mean(np.mean(errors, axis=0) ** 2)) < 5.0  # dB: the envelope, gain included

    x16 = xp * SCALE
    residual = fir(x16, lpc, FRAME)
    gain_db = lambda r: 10 * np.log10(np.mean(x16[800:-800] ** 2) / np.mean(r[800:-800] ** 2))  # noqa: E731
    assert gain_db(residual) > gain_db(lfilter(a, [1], x16)) - 1.0  # predicts nearly as well as the true filter
    assert np.allclose(allpole(residual, lpc, FRAME), x16, atol=1e-8 * np.abs(x16).max())


@pytest.mark.parametrize("f0", [70.0, 118.5, 190.0, 262.3, 410.0])
def test_pitch_of_glottal_pulse_trains_within_one_percent(f0):
    feats = features(glottal_vowel(f0))
    estimate = RATE / feats[5:-3, 18]
    assert np.max(np.abs(estimate - f0) / f0) < 0.01
    assert np.mean(feats[5:-3, 19]) > 0.9


def test_pitch_correlation_is_low_on_noise():
    feats = features(0.1 * np.random.default_rng(3).standard_normal(RATE))
    assert np.mean(feats[:, 19]) < 0.4


def test_features_of_a_prefix_are_the_first_packets_of_the_whole():
    x = glottal_vowel(150.0, 1.0) * np.hanning(RATE)
    prefix = 640 * 10 + LOOKAHEAD
    whole, part = features(x), features(x[:prefix])
    assert np.allclose(part[:40], whole[:40])  # a packet's features need nothing past its lookahead


def test_features_shape_and_input_checks():
    feats = features(Audio(np.zeros((1, 8000), np.float32), 8000))  # resampled to 16 kHz
    assert feats.shape == (100, 20) and np.all(np.isfinite(feats))
    with pytest.raises(ValueError):
        features(np.zeros((2, 100)))


# -- filters -------------------------------------------------------------------------------


def test_allpole_and_its_adjoint_are_the_inverse_and_transpose_of_the_lpc_matrix():
    rng = np.random.default_rng(1)
    hop, frames, order = 7, 5, 3
    a = rng.uniform(-0.3, 0.3, (frames, order))
    x = rng.standard_normal(frames * hop)
    m = np.eye(len(x))
    for n in range(len(x)):
        for k in range(order):
            if n - 1 - k >= 0:
                m[n, n - 1 - k] = a[n // hop, k]
    assert np.allclose(allpole(x, a, hop), np.linalg.solve(m, x))
    assert np.allclose(allpole_adjoint(x, a, hop), np.linalg.solve(m.T, x))
    assert np.allclose(fir(allpole(x, a, hop), a, hop), x)


# -- quantizer -----------------------------------------------------------------------------


def test_packet_fields_are_exactly_64_bits():
    assert sum(width for _, width in FIELDS) == 64 and PACKET_BYTES == 8
    values = {name: (1 << width) - 1 if i % 2 else i % (1 << width) for i, (name, width) in enumerate(FIELDS)}
    packet = pack_fields(values)
    assert len(packet) == 8 and unpack_fields(packet) == values
    with pytest.raises(CodecError):
        unpack_fields(packet[:7])
    with pytest.raises(CodecError):
        pack_fields({**values, "period": 64})


def test_quantizer_decoder_reconstructs_what_the_encoder_chose():
    quantizer = PacketQuantizer(random_codebooks())
    feats = features(glottal_vowel(140.0, 0.64))[:64]
    packets = quantizer.encode(feats)
    assert len(packets) == 16 and all(len(p) == 8 for p in packets)
    decoded = quantizer.decode(packets)
    previous = None
    for index in range(16):
        frames = feats[4 * index : 4 * index + 4]
        values, last = quantizer.encode_packet(frames, previous, feats[4 * index + 4 : 4 * index + 8])
        assert np.allclose(decoded[4 * index + 3, :18], last)  # decoder state tracks the encoder's
        out, _ = quantizer.decode_packet(values, previous)
        choices = []
        for choice in range(8):
            other, _ = quantizer.decode_packet({**values, "interp": choice}, previous)
            choices.append(np.sum(quantizer.weights * (other[[0, 2], :18] - frames[[0, 2], :18]) ** 2))
        assert choices[values["interp"]] == pytest.approx(min(choices))  # the encoder's choice is the best
        previous = last
    assert np.all((decoded[:, 18] >= 32) & (decoded[:, 18] <= 256))
    assert np.median(np.abs(decoded[:, 18] / feats[:, 18] - 1)) < 0.05  # 6-bit log period + modulation


def _packet_error(quantizer, values, previous, frames) -> float:
    decoded, _ = quantizer.decode_packet(values, previous)
    return float(np.sum((decoded[:, :18] - frames[:, :18]) ** 2))


def _feature_streams():
    """Real features of two voices and random ones (the search must not rely on smooth input)."""
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 3.0, (48, 20))
    noise[:, 18], noise[:, 19] = rng.uniform(32, 256, 48), rng.uniform(0, 1, 48)
    return [features(glottal_vowel(110.0, 0.48))[:48], features(glottal_vowel(230.0, 0.48))[:48], noise]


@pytest.mark.parametrize("lookahead", [0.0, 1.0])
def test_packet_search_never_does_worse_than_the_greedy_encoder(lookahead):
    """On the error it minimises: the packet's four frames (weighted), plus with look-ahead the best
    the next packet's frames 1-3 can reach from its frame 4."""
    quantizer = PacketQuantizer(random_codebooks(), lookahead=lookahead)

    def cost(values, previous, frames, upcoming) -> float:
        decoded, last = quantizer.decode_packet(values, previous)
        error = float(np.sum(quantizer.weights * (decoded[:, :18] - frames[:, :18]) ** 2))
        return error + lookahead * float(quantizer._upcoming_error(upcoming[:, :18], last[None])[0])

    better = 0
    for feats in _feature_streams():
        previous = None
        for start in range(0, len(feats) - 4, 4):
            frames, upcoming = feats[start : start + 4], feats[start + 4 : start + 8]
            values, last = quantizer.encode_packet(frames, previous, upcoming)
            ours = cost(values, previous, frames, upcoming)
            theirs = cost(quantizer.greedy_packet(frames, previous)[0], previous, frames, upcoming)
            assert ours <= theirs + 1e-9 * (1 + theirs)  # the greedy packet is one of the candidates
            better += ours < theirs - 1e-9
            previous = last
    assert better > 10  # and the search does find better packets


def test_packet_search_is_deterministic_and_the_unchanged_decoder_reads_both_encoders():
    quantizer = PacketQuantizer(random_codebooks())
    feats = _feature_streams()[0]
    packets = quantizer.encode(feats)
    assert packets == quantizer.encode(feats.copy()) and all(len(p) == PACKET_BYTES for p in packets)
    greedy, previous = [], None
    for start in range(0, len(feats), 4):  # a stream written by the former encoder
        values, previous = quantizer.greedy_packet(feats[start : start + 4], previous)
        greedy.append(pack_fields(values))
    assert len(greedy[0]) == PACKET_BYTES and greedy != packets
    for stream in (packets, greedy):
        decoded = quantizer.decode(stream)
        assert decoded.shape == feats.shape and np.all(np.isfinite(decoded))
    error = [np.sum((quantizer.decode(s)[:, :18] - feats[:, :18]) ** 2) for s in (packets, greedy)]
    assert error[0] < error[1]


def test_codebooks_refuse_wrong_shapes():
    arrays = random_codebooks().arrays()
    arrays["quantizer.delta"] = arrays["quantizer.delta"][:100]
    with pytest.raises(ValueError, match="delta"):
        Codebooks.from_arrays(arrays)


# -- vocoder and training (torch) ------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("subframe", [40, 80])
def test_compiled_vocoder_equals_the_torch_reference(subframe):
    from evalkit.lpcnet.framewise import FramewiseVocoder, VocoderConfig
    from evalkit.lpcnet.inference import Vocoder

    torch.manual_seed(0)
    model = FramewiseVocoder(VocoderConfig(subframe=subframe)).double()
    feats = features(glottal_vowel(120.0, 0.3)).astype(np.float64)
    lpc, rms = lpc_from_cepstrum(feats[:, :18])
    noise = np.random.default_rng(0).standard_normal(len(feats) * FRAME)
    with torch.no_grad():
        reference = model(*(torch.from_numpy(v[None]) for v in (feats, lpc, rms, noise)))[0].numpy()
    arrays = {name: t.numpy() for name, t in model.state_dict().items()}
    compiled = Vocoder(arrays, subframe=subframe, dtype=np.float64).decode(feats, noise)
    assert np.sqrt(np.mean(reference**2)) > 1e-4
    assert np.max(np.abs(compiled - reference)) < 1e-6 * np.max(np.abs(reference))


def _train_config(tmp_path: Path, steps: int) -> dict:
    from evalkit.audio import save

    data = tmp_path / "data"
    for i, f0 in enumerate((95, 140, 210, 260)):
        save(Audio(glottal_vowel(f0, 1.2).astype(np.float32), RATE), data / f"v{i}.wav")
    return {
        "recipe": "lpcnet-framewise",
        "seed": 0,
        "run_dir": str(tmp_path / "run"),
        "data": {"train": str(data), "crop_seconds": 0.16, "noise_prob": 0.0},
        "model": dict(LPCNET_TINY),
        "optim": {"batch_size": 4, "steps": steps, "warmup_steps": 1, "lr": 0.01},
        "losses": {"l1": 0.0},
        "run": {"log_every": 5, "checkpoint_every": 5, "threads": 1},
    }


@needs_torch
def test_a_few_training_steps_lower_the_loss(tmp_path):
    from evalkit.neural.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig.load(_train_config(tmp_path, 20)), log=lambda *a, **k: None)
    batch = trainer._batch(4)
    trainer.recipe.initialise(trainer._batch(8))

    def loss() -> float:
        torch.manual_seed(123)  # the same noise and quantizer draws each time
        with torch.no_grad():
            y, _ = trainer.recipe.forward(batch)
        return float(trainer.stft_loss(y, batch) + trainer.mel_loss(y, batch))

    before = loss()
    for _ in range(20):
        trainer.train_step(trainer._batch(4))
    assert loss() < 0.9 * before


@needs_torch
def test_training_exports_weights_the_codec_loads(tmp_path):
    from evalkit.lpcnet.weights import load_weights, save_weights
    from evalkit.neural.train import TrainConfig, Trainer

    quantizer = save_weights(tmp_path / "q.npz", codebooks=random_codebooks())
    config = _train_config(tmp_path, 2)
    config["model"]["quantizer"] = str(quantizer)
    path = Trainer(TrainConfig.load(config), log=lambda *a, **k: None).run()
    weights = load_weights(path)
    assert weights.config["vocoder_config"]["gru1"] == 16 and "quantizer.stages" in weights.arrays
    codec = _codec(path)
    assert len(codec.encode(Audio(glottal_vowel(150.0, 0.5)[None].astype(np.float32), RATE))) > 0


# -- the codec -------------------------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _codec(path: Path, quantized: bool = True):
    from evalkit.lpcnet.codec import LPCNetCodec

    return LPCNetCodec(str(path), _sha(path), quantized=quantized)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    if torch is None:
        pytest.skip("torch is not installed")
    return tiny_lpcnet_weights(tmp_path_factory.mktemp("lpcnet"))[0]


@pytest.fixture(scope="module")
def voice():
    x = glottal_vowel(130.0, 1.0) * np.hanning(RATE) + 0.002 * np.random.default_rng(5).standard_normal(RATE)
    return Audio(x[None].astype(np.float32), RATE, "voice")


def test_codec_packets_are_64_bits_and_the_rate_1600_bit_per_s(tiny_weights, voice):
    codec = _codec(tiny_weights)
    stream = codec.encode_packets(voice)
    packets = -(-(voice.frames + LOOKAHEAD) // 640)
    assert len(stream.packets) == packets and all(len(p) == 8 for p in stream.packets)
    assert codec.info.nominal_bitrate == 1600.0
    run = roundtrip(codec, voice)
    assert run.bitrate == pytest.approx(64 * packets / voice.duration)
    assert run.decoded.frames == voice.frames and run.delay_ok


def test_unquantized_mode_sends_float16_features(tiny_weights, voice):
    codec = _codec(tiny_weights, quantized=False)
    stream = codec.encode_packets(voice)
    assert {len(p) for p in stream.packets} == {160} and codec.info.nominal_bitrate == 32000.0
    bad = Bitstream(stream.backend, stream.header, [b"\xff" * 160] + stream.packets[1:])  # NaN features
    with pytest.raises(CodecError, match="non-finite"):
        codec.decode_packets(bad)


def test_decoding_a_prefix_of_the_packets_gives_the_prefix_of_the_speech(tiny_weights, voice):
    codec = _codec(tiny_weights)
    stream = codec.encode_packets(voice)
    whole = codec._decode(stream.header, stream.packets)
    part = codec.synthesise(codec.quantizer.decode(stream.packets[:10]), 0)
    assert np.allclose(part, whole[: len(part)], atol=1e-6)


def test_lost_packets_are_concealed_by_repetition(tiny_weights, voice):
    codec = _codec(tiny_weights)
    stream = codec.encode_packets(voice)
    lost = Bitstream(stream.backend, stream.header, [None, None] + stream.packets[2:5] + [None] + stream.packets[6:])
    out = codec.decode_packets(lost).samples[0]
    assert np.all(out[: LOOKAHEAD + 2 * 640] == 0) and np.any(out[LOOKAHEAD + 2 * 640 :] != 0)
    assert out.shape == (voice.frames + LOOKAHEAD,) and np.all(np.isfinite(out))
    with pytest.raises(CodecError, match="lost"):
        codec.decode_packets(Bitstream(stream.backend, stream.header, [None] * len(stream.packets)))


@pytest.mark.parametrize("damage", ["header", "count", "size", "frames"])
def test_malformed_streams_raise_codec_error(tiny_weights, voice, damage):
    codec = _codec(tiny_weights)
    stream = codec.encode_packets(voice)
    header, packets = dict(stream.header), list(stream.packets)
    if damage == "header":
        header["weights"] = "0" * 16
    elif damage == "count":
        packets = packets[:-1]
    elif damage == "size":
        packets[3] = packets[3] + b"\x00"
    else:
        header["frames"] = 10**12  # must not allocate a year of audio
    with pytest.raises(CodecError):
        codec.decode(Bitstream(stream.backend, header, packets).to_bytes())


def test_weights_are_pinned_and_checked(tiny_weights, tmp_path):
    from evalkit.lpcnet.codec import LPCNetCodec

    with pytest.raises(ConfigError, match="sha256"):
        LPCNetCodec(str(tiny_weights), "0" * 64)
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="not an LPCNet weights file"):
        LPCNetCodec(str(bogus), _sha(bogus))
