"""The low-rank (NMF / PCA) spectrogram codec: bases, quantizers, streaming Griffin–Lim, bitstream checks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("constriction")

from evalkit.audio import Audio  # noqa: E402
from evalkit.cards import load_cards  # noqa: E402
from evalkit.errors import CodecError, ConfigError  # noqa: E402
from evalkit.nmf.basis import beta_divergence, fit_activations, learn_nmf, log_spectral_distance  # noqa: E402
from evalkit.nmf.codec import NMFCodec  # noqa: E402
from evalkit.nmf.spectra import BLOCK, LAG, StreamingGriffinLim, block_magnitudes, frame_spectra  # noqa: E402

CARDS = load_cards()
NMF_CARDS = sorted(name for name, card in CARDS.items() if card.backend == "nmf")


@pytest.fixture(scope="module")
def bundle_card():
    return CARDS["nmf-r16-q6"]


def _codec(card, **params):
    return NMFCodec(**{**card._build_params(None), **params})


def _speech_blocks(speech) -> np.ndarray:
    x = speech.samples[0]
    return block_magnitudes(np.concatenate([x, np.zeros(-len(x) % BLOCK)]))


def test_nmf_error_falls_with_rank_on_held_out_speech(bundle_card, speech):
    """The shipped bases, fitted to speech none of them was trained on (and a random one as a floor)."""
    blocks = _speech_blocks(speech)
    errors = {}
    for basis in ("nmf", "pca"):
        for rank in (8, 16, 32):
            model = _codec(bundle_card, basis=basis, rank=rank, step_db=6.0 if basis == "nmf" else 2.0).model
            errors[basis, rank] = log_spectral_distance(blocks, model.synthesise(model.analyse(blocks)))
        assert errors[basis, 8] > errors[basis, 16] > errors[basis, 32]
    assert errors["nmf", 32] < 6.0 and errors["pca", 32] < 4.5


def test_learnt_nmf_divergence_falls_with_rank_on_generated_spectra():
    rng = np.random.default_rng(0)
    parts = rng.gamma(1.0, 1.0, (12, 64))
    v = rng.gamma(0.5, 1.0, (400, 12)) @ parts + 1e-3
    divergences = []
    for rank in (2, 4, 8, 12):
        w = learn_nmf(v, rank, iterations=150, seed=1, beta=0.0)
        divergences.append(beta_divergence(v, fit_activations(v, w, beta=0.0, iterations=150) @ w, 0.0))
    assert all(a > b for a, b in zip(divergences, divergences[1:]))
    assert np.allclose(w.sum(axis=1), 1.0)


def test_quantizer_symbols_invert_within_half_a_step(bundle_card, speech):
    for basis, step in (("nmf", 6.0), ("pca", 2.0)):
        codec = _codec(bundle_card, basis=basis, rank=16, step_db=step)
        values = codec.model.analyse(_speech_blocks(speech))
        q = codec.quantizer
        symbols = q.symbols(values)
        assert symbols.min() >= 0 and np.all(symbols < q.levels)
        back = q.values(symbols)
        inside = (symbols > 0) & (symbols < q.levels - 1)  # not clipped at either end
        if basis == "nmf":
            error = np.abs(20 * np.log10(back[inside]) - 20 * np.log10(values[inside]))
        else:
            error = np.abs(back - values)[inside]
        assert error.max() <= step / 2 + 1e-9


def _griffin_lim(magnitudes: np.ndarray) -> np.ndarray:
    synth = StreamingGriffinLim(16)
    return np.concatenate([synth.block(m) for m in magnitudes])


def test_streaming_griffin_lim_is_causal_and_fits_a_tone():
    t = np.arange(16 * BLOCK) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    magnitudes = block_magnitudes(tone)
    out = _griffin_lim(magnitudes)
    assert len(out) == len(tone)
    aligned = out[LAG:]  # the output lags the input by LAG samples
    spectrum = np.abs(frame_spectra(aligned[: 8 * BLOCK]))[8:]
    assert np.argmax(spectrum.mean(axis=0)) == round(440 / 16000 * 512)
    level = np.sqrt(np.mean(aligned[4 * BLOCK : 12 * BLOCK] ** 2))
    assert level == pytest.approx(0.3 / np.sqrt(2), rel=0.15)
    # block b's output depends on blocks up to b only: changing the last block leaves the rest alone
    changed = magnitudes.copy()
    changed[-1] *= 3
    again = _griffin_lim(changed)
    assert np.array_equal(again[:-BLOCK], out[:-BLOCK])


def test_bitrate_is_measured_from_bytes_and_silence_is_cheap(bundle_card, speech):
    codec = CARDS["nmf-r16-q6"].build()
    data = codec.encode_packets(speech)
    speech_bits = 8 * data.payload_bytes / speech.duration
    silent = codec.encode_packets(Audio(np.zeros((1, speech.frames), np.float32), 16000))
    assert 8 * silent.payload_bytes / speech.duration < 0.6 * speech_bits
    assert speech_bits == pytest.approx(codec.info.nominal_bitrate, rel=0.5)


def test_rates_rise_with_rank_and_fall_with_step():
    rates = {
        (c["basis"], c["rank"], c["step_db"]): c["bitrate"] for c in CARDS["nmf-r16-q6"].build().configuration_table()
    }
    assert rates["nmf", 8, 6.0] < rates["nmf", 16, 6.0] < rates["nmf", 32, 6.0]
    assert rates["nmf", 16, 3.0] > rates["nmf", 16, 6.0] > rates["nmf", 16, 9.0]
    assert rates["pca", 16, 1.0] > rates["pca", 16, 2.0] > rates["pca", 16, 4.0]


def test_lost_packets_repeat_the_last_one_and_leading_losses_are_silent(speech):
    codec = CARDS["nmf-r16-q6"].build()
    stream = codec.encode_packets(speech)
    lost = list(stream.packets)
    lost[0] = lost[1] = lost[10] = None
    magnitudes = codec.magnitudes(lost)
    full = codec.magnitudes(stream.packets)
    assert not magnitudes[:2].any()
    assert np.array_equal(magnitudes[10], full[9])
    audio = codec.decode_packets(type(stream)(stream.backend, stream.header, lost))
    assert audio.frames == speech.frames + LAG and np.isfinite(audio.samples).all()


def test_malformed_streams_raise_codec_error(speech):
    codec = CARDS["nmf-r16-q6"].build()
    stream = codec.encode_packets(speech)
    bad = [
        {**stream.header, "rank": 32},
        {**stream.header, "weights": "0" * 16},
        {**stream.header, "frames": stream.header["frames"] * 2},
    ]
    for header in bad:
        with pytest.raises(CodecError):
            codec.decode_packets(type(stream)(stream.backend, header, stream.packets))
    with pytest.raises(CodecError):
        codec.decode_packets(type(stream)(stream.backend, stream.header, stream.packets[:-1]))
    oversized = list(stream.packets)
    oversized[3] = bytes(1000)
    with pytest.raises(CodecError):
        codec.decode_packets(type(stream)(stream.backend, stream.header, oversized))


def test_card_configuration_is_checked(bundle_card):
    with pytest.raises(ConfigError, match="holds no"):
        _codec(bundle_card, rank=12)
    with pytest.raises(ConfigError, match="basis"):
        _codec(bundle_card, basis="ica")
    with pytest.raises(ConfigError, match="sha256"):
        _codec(bundle_card, sha256="0" * 64)


def test_every_nmf_card_names_a_configuration_of_its_weights():
    assert len(NMF_CARDS) >= 5
    for name in NMF_CARDS:
        info = CARDS[name].build().info
        assert info.family in ("nmf", "nmf-pca") and info.nominal_bitrate > 0


def test_a_bundle_trained_here_codes_and_decodes(tmp_path):
    """Not only the shipped weights: a rank-4 bundle learnt on a tone (the fuzz test's tiny nmf) round-trips."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from fuzz_codecs import _seed_audio, _tiny_nmf

    codec = _tiny_nmf(tmp_path)
    audio = Audio(_seed_audio(16000), 16000)
    stream = codec.encode_packets(audio)
    assert codec.info.nominal_bitrate == 500.0 and len(stream.packets[0]) <= 4 * 4
    decoded = codec.decode_packets(stream)
    assert decoded.frames == audio.frames + LAG and np.isfinite(decoded.samples).all()
    assert np.abs(decoded.samples).max() > 0.01  # the tone comes out, not silence
