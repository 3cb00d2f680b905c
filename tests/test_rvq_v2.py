"""RVQ v2: the Vocos-style iSTFT decoder, its declared lookahead, two-stage training, and v1 kept bit-exact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from neural_fixtures import decoded_in_chunks, rvq_train_config, sha, voice

from evalkit.audio import Audio, load, resample
from evalkit.cards import find_card
from evalkit.codecs import Bitstream
from evalkit.errors import ConfigError
from evalkit.harness import roundtrip

torch = pytest.importorskip("torch")

from evalkit.neural.model import RVQCodecModel, RVQConfig, load_inference, save_inference  # noqa: E402
from evalkit.neural.recipes import RVQRecipe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY_V2 = {
    "channels": 4,
    "max_channels": 16,
    "strides": [4, 4, 4, 5],
    "dilations": [1],
    "latent_dim": 8,
    "codebook_size": 16,
    "n_q": 4,
    "dropout_choices": [2, 4],
    "decoder": "istft",
    "decoder_channels": 16,
    "decoder_blocks": [1, 1],
    "n_fft": 640,
}
# rvq-3k (v1 weights) on the first second of data/demo's arctic-slt-a0009: the stream's sha256, and the
# decoded signal's first samples and L1 norm, recorded on one thread before the v2 changes to the model code.
V1_PACKETS_SHA256 = "9a0017242253ac34a8417083de454dac5e17c06827aa0ffd5fdebf7d834e5aee"  # the codes, not the container
V1_FIRST = [-2.7978502e-05, -1.7553254e-04, -3.8514772e-04, -5.2766816e-04, -5.2107463e-04]
V1_L1 = 415.5567626953125


@pytest.fixture(scope="module")
def tiny_v2(tmp_path_factory):
    torch.manual_seed(0)
    model = RVQCodecModel(RVQConfig.from_dict(TINY_V2))
    model.initialise_codebooks(
        torch.from_numpy(np.stack([voice(1.0, f, i) for i, f in enumerate((100, 170))]))[:, None]
    )
    path = save_inference(model, tmp_path_factory.mktemp("v2") / "tiny.pt")
    return path, sha(path)


@pytest.fixture
def one_thread():
    """The recorded stream was made on one thread: float sums in another order can flip a near-tie code."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_v1_weights_still_encode_and_decode_as_recorded(one_thread):
    codec = find_card("rvq-3k").build()
    audio = resample(load(ROOT / "data" / "demo" / "audio" / "arctic-slt-a0009.wav"), 16000)
    data = codec.encode(Audio(audio.samples[:, :16000], 16000, "clip"))
    packets = Bitstream.from_bytes(
        data, "rvq"
    ).packets  # the container's header may gain fields; the codes may not change
    assert hashlib.sha256(b"".join(packets)).hexdigest() == V1_PACKETS_SHA256 and codec.info.lookahead_samples == 0
    out = codec.decode(data).samples[0]
    assert np.allclose(out[:5], V1_FIRST, atol=1e-8) and float(np.abs(out).sum()) == pytest.approx(V1_L1, rel=1e-6)


def test_istft_decoder_streams_in_any_chunks_and_is_causal():
    torch.manual_seed(0)
    model = RVQCodecModel(RVQConfig.from_dict(TINY_V2)).eval()
    codes = model.encode(torch.from_numpy(voice(0.8))[None, None], 4)
    whole = model.decode(codes)
    assert torch.allclose(decoded_in_chunks(model, codes), whole, atol=1e-6)
    later = codes.clone()
    later[..., 20:] = 0
    assert torch.equal(model.decode(later)[..., : 20 * 320], whole[..., : 20 * 320])


def test_lookahead_is_declared_and_trimmed_in_training():
    config = RVQConfig.from_dict(TINY_V2)
    assert config.lookahead == 640 - 160 and RVQConfig().lookahead == 0
    recipe = RVQRecipe(TINY_V2)
    y, x = torch.arange(10.0 * 640)[None, None], torch.zeros(1, 1, 6400)
    out, target = recipe.align(y, x)
    assert out[0, 0, 0] == 480 and out.shape == target.shape == (1, 1, 6400 - 480)
    with pytest.raises(ConfigError, match="decoder"):
        RVQConfig.from_dict({**TINY_V2, "decoder": "wavenet"})


def test_v2_codec_output_lags_by_the_declared_lookahead(tiny_v2):
    from evalkit.neural.codec import RVQCodec

    codec = RVQCodec(str(tiny_v2[0]), tiny_v2[1], 2)
    assert codec.info.lookahead_samples == 480
    audio = Audio(voice(1.3), 16000, "voice")
    run = roundtrip(codec, audio)
    assert run.decoded.frames == audio.frames and run.bitrate == pytest.approx(2 * 4 * 50, rel=0.1)


def _fixed_loss(trainer, batch) -> float:
    trainer.model.eval()
    with torch.no_grad():
        y, _, _ = trainer.model(batch, n_q=4)
    y, x = trainer.recipe.align(y, batch)
    return float(trainer.stft_loss(y, x) + trainer.mel_loss(y, x))


def test_istft_training_steps_lower_the_loss(tmp_path):
    from evalkit.neural.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig.load(rvq_train_config(tmp_path, 20, TINY_V2)), log=lambda *a, **k: None)
    trainer.recipe.initialise(trainer._batch(16))
    batch = trainer._batch(4)
    before = _fixed_loss(trainer, batch)
    for _ in range(20):
        trainer.train_step(trainer._batch(4))
    assert _fixed_loss(trainer, batch) < 0.9 * before


def test_frozen_encoder_stage_trains_the_decoder_only(tmp_path, tiny_v2):
    from evalkit.neural.train import TrainConfig, Trainer

    path, _ = tiny_v2
    config = TrainConfig.load(
        rvq_train_config(tmp_path, 3, {"init": str(path), "freeze_encoder": True}, adversarial_start=0)
    )
    trainer = Trainer(config, log=lambda *a, **k: None)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    frozen = [k for k in before if k.startswith("encoder.") or k.endswith(".codebook")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    x = torch.from_numpy(voice(0.4))[None, None]
    assert torch.equal(load_inference(path).encode(x, 4), load_inference(tmp_path / "run" / "model.pt").encode(x, 4))


def test_init_encoder_copies_the_latent_space_and_refuses_other_shapes(tiny_v2, tmp_path):
    path, _ = tiny_v2
    source = load_inference(path)
    recipe = RVQRecipe({**TINY_V2, "decoder_channels": 24, "init_encoder": str(path)})
    x = torch.from_numpy(voice(0.4))[None, None]
    assert torch.equal(recipe.model.encode(x, 4), source.encode(x, 4))
    with pytest.raises(ConfigError, match="init_encoder"):
        RVQRecipe({**TINY_V2, "latent_dim": 4, "init_encoder": str(path)})
    with pytest.raises(ConfigError, match="freeze_encoder"):
        RVQRecipe({**TINY_V2, "freeze_encoder": True})


def test_int8_rows_round_trip_within_half_a_step_and_keep_the_rest():
    from evalkit.neural.model import INT8_SCALE, float_state, int8_rows

    state = {
        "w": torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(0)).half(),
        "b": torch.randn(6).half(),
        "kept": torch.randn(2, 2).half(),
        "flag": torch.tensor([True]),
    }
    stored = int8_rows(state, keep=lambda name: name == "kept")
    assert (
        stored["w"].dtype == torch.int8 and stored["b"].dtype == torch.float16 and stored["kept"].dtype == torch.float16
    )
    back = float_state(stored)
    assert set(back) == set(state) and back["flag"].dtype == torch.bool
    step = stored["w" + INT8_SCALE].float()[:, None, None]
    assert torch.all((back["w"] - state["w"].float()).abs() <= step / 2 + 1e-3 * step)
    assert torch.equal(back["b"], state["b"].float()) and torch.equal(back["kept"], state["kept"].float())


def test_v2_weights_store_the_decoder_int8_and_the_code_path_float16():
    data = torch.load(ROOT / "codecs" / "weights" / "rvq-16k-v2.pt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]
    int8 = {k for k, v in data.items() if v.dtype == torch.int8}
    assert int8 and all(k.startswith("decoder.") for k in int8)
    assert all(
        v.dtype in (torch.float16, torch.bool) for k, v in data.items() if k.startswith(("encoder.", "quantizer."))
    )
