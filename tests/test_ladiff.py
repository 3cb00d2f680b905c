"""LaDiffCodec: noise schedule, reverse steps, midway infilling, training, and the `ladiff` codec.

Models here are tiny and random (codebooks k-means'd on test signals); the shipped cards run the
codec contract in tests/test_codec_contract.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from neural_fixtures import sha, voice

from evalkit.audio import Audio, save
from evalkit.cards import load_cards
from evalkit.codecs.bitstream import Bitstream
from evalkit.errors import CodecError, ConfigError
from evalkit.harness import roundtrip

torch = pytest.importorskip("torch")

from evalkit.neural.diffusion import CosineSchedule, reverse_step, sample, sampling_times  # noqa: E402
from evalkit.neural.ladiff import (  # noqa: E402
    AEConfig,
    ContinuousAE,
    DiffusionConfig,
    LatentDiffusion,
    codes_fingerprint,
    load_ladiff,
    save_autoencoder,
    save_ladiff,
)
from evalkit.neural.model import RVQCodecModel, RVQConfig, save_inference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY_RVQ = {
    "channels": 4,
    "max_channels": 16,
    "strides": [4, 4, 4, 5],
    "dilations": [1],
    "latent_dim": 8,
    "codebook_size": 16,
    "n_q": 4,
    "dropout_choices": [2, 4],
}
TINY_AE = {"channels": 4, "max_channels": 16, "strides": [2, 4, 5], "dilations": [1], "latent_dim": 8}
TINY_DIFFUSION = {
    "latent_dim": 8,
    "code_dim": 8,
    "upsampler_channels": 16,
    "widths": [8, 16, 16],
    "emb_dim": 16,
    "mid_dilations": [1, 2],
    "max_n_q": 4,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Paths and sha256 of a tiny RVQ model, autoencoder and latent diffusion model."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ladiff")
    rvq = RVQCodecModel(RVQConfig.from_dict(TINY_RVQ))
    rvq.initialise_codebooks(
        torch.from_numpy(np.stack([voice(1.0, f, i) for i, f in enumerate((100, 160, 230))]))[:, None]
    )
    rvq_path = save_inference(rvq, folder / "rvq.pt")
    autoencoder = ContinuousAE(AEConfig.from_dict(TINY_AE))
    ae_path = save_autoencoder(autoencoder, folder / "ae.pt")
    model = LatentDiffusion(DiffusionConfig.from_dict(TINY_DIFFUSION))
    torch.nn.init.normal_(model.unet.out.weight, std=0.05)  # a zero-initialised output would predict no noise at all
    ladiff_path = save_ladiff(model, autoencoder, codes_fingerprint(rvq), folder / "ladiff.pt")
    return {
        "rvq": rvq_path,
        "rvq_sha": sha(rvq_path),
        "ae": ae_path,
        "ladiff": ladiff_path,
        "ladiff_sha": sha(ladiff_path),
        "codes": codes_fingerprint(rvq),
    }


def _codec(tiny, n_q: int = 2, **params):
    from evalkit.neural.ladiff_codec import LaDiffCodec

    return LaDiffCodec(str(tiny["rvq"]), tiny["rvq_sha"], str(tiny["ladiff"]), tiny["ladiff_sha"], n_q, **params)


# -- noise schedule and sampler ----------------------------------------------------------------


def test_cosine_schedule_is_monotone_from_one_to_zero():
    abar = CosineSchedule(1000).abar
    assert abar[0] == 1.0 and abar[-1] < 1e-4 and len(abar) == 1001
    assert torch.all(abar[1:] < abar[:-1])


@pytest.mark.parametrize("t", [1, 100, 500, 999])
def test_forward_process_has_the_right_moments(t):
    schedule = CosineSchedule(1000)
    generator = torch.Generator().manual_seed(t)
    x0 = torch.linspace(-2, 2, 8)[None].repeat(40000, 1)
    x_t = schedule.q_sample(x0, torch.full((40000,), t), torch.randn(x0.shape, generator=generator))
    abar = float(schedule.abar[t])
    assert torch.allclose(x_t.mean(0), math.sqrt(abar) * x0[0], atol=0.02)
    assert torch.allclose(x_t.var(0), torch.full((8,), 1 - abar), atol=0.03 * max(1 - abar, 0.01) + 2e-3)


def test_one_reverse_step_from_t1_returns_the_input():
    schedule = CosineSchedule(1000)
    x = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(0))
    arbitrary = lambda x_t, t: torch.ones_like(x_t)  # noqa: E731 - any bounded noise estimate
    out = reverse_step(schedule, arbitrary, x, 1, 0, 0.0, None)
    assert torch.allclose(out, x, atol=1e-2)
    abar = float(schedule.abar[1])
    assert float((out - x).abs().max()) <= 1.01 * math.sqrt(1 - abar) / math.sqrt(abar) + 1e-3  # |eps| = 1


def test_clip_bounds_the_predicted_clean_latent():
    schedule = CosineSchedule(1000)
    x = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(0))
    blind = lambda x_t, t: torch.zeros_like(x_t)  # noqa: E731 - at t = T this puts x_0 at x / sqrt(abar_T), huge
    assert reverse_step(schedule, blind, x, 1000, 0, 0.0, None).abs().max() > 100
    clipped = reverse_step(schedule, blind, x, 1000, 0, 0.0, None, clip=2.0)
    assert clipped.abs().max() <= 2.0
    step = reverse_step(schedule, blind, x, 1000, 500, 0.0, None, clip=2.0)  # eps re-derived from the clamped x_0
    assert torch.all(torch.isfinite(step)) and step.abs().max() < 10


def test_midway_zero_returns_the_condition_unchanged():
    calls = []
    condition = torch.randn(1, 8, 32)
    out = sample(CosineSchedule(), lambda x, t: calls.append(t) or x, condition, evaluations=50, midway_t=0, lam=0.3)
    assert torch.equal(out, condition) and not calls


def test_sampling_times_count_network_evaluations():
    assert sampling_times(1000, 5) == [1000, 800, 600, 400, 200, 0]
    assert len(sampling_times(100, 25)) == 26 and sampling_times(100, 500) == list(range(100, -1, -1))
    evaluations = []
    sample(
        CosineSchedule(), lambda x, t: evaluations.append(int(t[0])) or torch.zeros_like(x), torch.zeros(1, 2, 8), 10
    )
    assert len(evaluations) == 10 and evaluations[0] == 1000


def test_ddpm_sampling_depends_on_the_generator_only():
    condition = torch.zeros(1, 4, 16)

    def draw(seed):
        return sample(
            CosineSchedule(), lambda x, t: 0.1 * x, condition, 5, eta=1.0, generator=torch.Generator().manual_seed(seed)
        )

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))


# -- models and training ---------------------------------------------------------------------


def test_unet_output_depends_on_a_bounded_neighbourhood():
    torch.manual_seed(0)
    model = LatentDiffusion(DiffusionConfig.from_dict(TINY_DIFFUSION))
    torch.nn.init.normal_(model.unet.out.weight, std=0.1)
    x, condition = torch.randn(1, 8, 256), torch.randn(1, 8, 256)
    t = torch.tensor([500])
    y = x.clone()
    y[..., 200:] = 0
    a, b = model.eps(x, t, condition, 2), model.eps(y, t, condition, 2)
    assert torch.equal(a[..., :100], b[..., :100]) and not torch.equal(a, b)


def _train_config(tmp_path: Path, tiny, recipe: str, steps: int) -> Path:
    data = tmp_path / "data"
    for i, f0 in enumerate((90, 140, 210)):
        save(Audio(voice(1.0, f0, i), 16000), data / f"v{i}.wav")
    model = (
        {
            "rvq_weights": str(tiny["rvq"]),
            "autoencoder_weights": str(tiny["ae"]),
            "n_q_choices": [2, 4],
            **TINY_DIFFUSION,
        }
        if recipe == "ladiff"
        else TINY_AE
    )
    config = {
        "recipe": recipe,
        "seed": 0,
        "run_dir": str(tmp_path / "run"),
        "data": {"train": str(data), "crop_seconds": 0.32},
        "model": model,
        "optim": {"batch_size": 4, "steps": steps, "warmup_steps": 1, "lr": 0.003},
        "losses": {"l1": 0.0, "stft": 0.0, "sisnr": 0.1},
        "run": {"log_every": 5, "checkpoint_every": 5, "threads": 1},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_diffusion_training_steps_lower_the_loss(tmp_path, tiny):
    from evalkit.neural.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig.load(_train_config(tmp_path, tiny, "ladiff", 30)), log=lambda *a, **k: None)
    trainer.recipe.initialise(trainer._batch(8))
    assert trainer.model.latent_scale > 0
    batch = trainer._batch(8)

    def fixed_loss():
        torch.manual_seed(1)  # the same times and noise before and after
        with torch.no_grad():
            latents, quantised, n_q = trainer.recipe._inputs(batch)
            losses = trainer.model.loss(latents, quantised, n_q)
        return float(losses["diff"] + losses["cond"])

    before = fixed_loss()
    for _ in range(30):
        trainer.train_step(trainer._batch(4))
    assert fixed_loss() < 0.9 * before


def test_autoencoder_and_ladiff_train_resume_and_export(tmp_path, tiny):
    from evalkit.cli import main

    assert main(["train", str(_train_config(tmp_path / "ae", tiny, "autoencoder", 3))]) == 0
    config = _train_config(tmp_path / "ld", tiny, "ladiff", 2)
    assert main(["train", str(config)]) == 0 and main(["train", str(config), "--steps", "3"]) == 0
    model, decoder, ae_config, codes = load_ladiff(tmp_path / "ld" / "run" / "model.pt")
    assert codes == tiny["codes"] and ae_config == AEConfig.from_dict(TINY_AE) and float(model.latent_scale) > 0


def test_export_bundles_a_later_decoder_only_with_the_same_encoder(tmp_path, tiny):
    from evalkit.neural.ladiff import load_autoencoder
    from evalkit.neural.ladiff_recipes import LaDiffRecipe

    params = {
        "rvq_weights": str(tiny["rvq"]),
        "autoencoder_weights": str(tiny["ae"]),
        "n_q_choices": [2],
        **TINY_DIFFUSION,
    }
    later = load_autoencoder(tiny["ae"])
    torch.nn.init.zeros_(later.decoder[0].bias)
    save_autoencoder(later, tmp_path / "later.pt")
    _, decoder, _, _ = load_ladiff(
        LaDiffRecipe({**params, "decoder_weights": str(tmp_path / "later.pt")}).export(tmp_path / "a.pt")
    )
    assert not decoder[0].bias.any()
    torch.nn.init.zeros_(later.encoder[0].bias)
    save_autoencoder(later, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="another encoder"):
        LaDiffRecipe({**params, "decoder_weights": str(tmp_path / "other.pt")}).export(tmp_path / "b.pt")


def test_ladiff_recipe_refuses_mismatched_models(tmp_path, tiny):
    from evalkit.neural.ladiff_recipes import LaDiffRecipe

    with pytest.raises(ConfigError, match="autoencoder_weights"):
        LaDiffRecipe({"rvq_weights": str(tiny["rvq"])})
    with pytest.raises(ConfigError, match="hop"):
        LaDiffRecipe(
            {
                "rvq_weights": str(tiny["rvq"]),
                "autoencoder_weights": str(tiny["ae"]),
                **{**TINY_DIFFUSION, "upsample_factors": 2},
            }
        )


# -- the codec ---------------------------------------------------------------------------------


def test_codec_contract_and_bitrate(tiny):
    codec = _codec(tiny, 2, steps=4)
    audio = Audio(voice(1.3), 16000, "voice")
    run = roundtrip(codec, audio)
    assert run.decoded.frames == audio.frames and run.bitrate == pytest.approx(2 * 4 * 50, rel=0.1)
    assert codec.info.lookahead_samples == 0 and not codec.info.streaming
    for bad in (b"", run.data[: len(run.data) // 2], run.data[:20] + bytes([run.data[20] ^ 0xFF]) + run.data[21:]):
        with pytest.raises(CodecError):
            codec.decode(bad)
    stream = codec.encode_packets(audio)
    lossy = Bitstream(stream.backend, stream.header, [None if i % 3 == 1 else p for i, p in enumerate(stream.packets)])
    assert np.all(np.isfinite(codec.decode_packets(lossy).samples))


@pytest.mark.parametrize(
    "params", [{"steps": 3}, {"steps": 3, "sampler": "ddpm"}, {"steps": 4, "midway_t": 50, "lam": 0.2}]
)
def test_decoding_is_deterministic_given_the_seed(tiny, params):
    audio = Audio(voice(0.8), 16000)
    data = _codec(tiny, seed=7, **params).encode(audio)
    again = _codec(tiny, seed=99, **params)  # the decoder takes the seed from the stream, not its card
    assert np.array_equal(again.decode(data).samples, _codec(tiny, **params).decode(data).samples)
    if params.get("sampler") == "ddpm":
        other = _codec(tiny, seed=8, **params).encode(audio)
        assert not np.array_equal(again.decode(data).samples, again.decode(other).samples)


@pytest.mark.parametrize("seed", [-1, 2**32, "7", True, 1.5, None])
def test_malformed_seed_or_length_raises_codec_error(tiny, seed):
    codec = _codec(tiny, steps=1)
    stream = codec.encode_packets(Audio(voice(0.5), 16000))
    header = {**stream.header, "seed": seed}
    with pytest.raises(CodecError, match="seed"):
        codec.decode(Bitstream(stream.backend, header, stream.packets).to_bytes())
    too_long = {**stream.header, "frames": 10**12}
    with pytest.raises(CodecError, match="packets"):
        codec.decode(Bitstream(stream.backend, too_long, stream.packets).to_bytes())


def test_chunked_decoding_waits_for_its_right_context_only(tiny):
    codec = _codec(tiny, steps=3, sampler="ddpm", chunk_frames=8, context_frames=3)
    codes = codec.model.encode(torch.from_numpy(voice(1.0))[None, None], 2)[0].numpy()  # 50 frames
    whole = list(codec.decode_blocks(codes, seed=5))
    assert len(whole) == 7 and codec.decode_latency_samples == 11 * 320
    for block in (0, 3):
        known = (block + 1) * 8 + 3  # a receiver that has the codes up to this block's right context
        early = list(codec.decode_blocks(codes[:, :known], seed=5))
        for index in range(block + 1):
            assert np.array_equal(early[index], whole[index])
    assert np.concatenate(whole).shape == (50 * 320,)


def test_chunked_decode_without_context_equals_whole_for_a_local_path(tiny):
    """midway_t = 0 decodes the condition path, which is local: blocks with enough context equal the whole decode."""
    whole = _codec(tiny, midway_t=0)
    chunked = _codec(tiny, midway_t=0, chunk_frames=10, context_frames=6)
    codes = whole.model.encode(torch.from_numpy(voice(1.0))[None, None], 2)[0].numpy()
    a = np.concatenate(list(whole.decode_blocks(codes, 0)))
    b = np.concatenate(list(chunked.decode_blocks(codes, 0)))
    assert np.allclose(a, b, atol=1e-5)


def test_codec_refuses_bad_parameters_and_foreign_weights(tiny, tmp_path):
    for params in (
        {"steps": -1},
        {"sampler": "euler"},
        {"midway_t": 1001},
        {"lam": 2.0},
        {"clip": -1},
        {"seed": -3},
        {"chunk_frames": -1},
    ):
        with pytest.raises(ConfigError):
            _codec(tiny, **params)
    from evalkit.neural.ladiff_codec import LaDiffCodec
    from evalkit.neural.model import load_inference

    other = RVQCodecModel(RVQConfig.from_dict(TINY_RVQ))
    path = save_inference(other, tmp_path / "other.pt")
    foreign = LaDiffCodec(str(path), sha(path), str(tiny["ladiff"]), tiny["ladiff_sha"], 2)  # models load on first use
    with pytest.raises(ConfigError, match="trained on"):
        foreign._models()
    with pytest.raises(CodecError, match="trained on"):  # a failed row naming the reason, in a run
        foreign.decode(foreign.encode(Audio(voice(0.3), 16000)))
    same_codes = load_inference(tiny["rvq"])  # a new decoder on the same encoder and codebooks is accepted
    torch.nn.init.zeros_(same_codes.decoder[0].weight)
    path = save_inference(same_codes, tmp_path / "new-decoder.pt")
    accepted = LaDiffCodec(str(path), sha(path), str(tiny["ladiff"]), tiny["ladiff_sha"], 2)
    assert accepted.diffusion is not None and accepted.n_q == 2


def test_ladiff_cards_pin_their_weights():
    cards = {name: card for name, card in load_cards().items() if card.backend == "ladiff"}
    assert cards, "no ladiff cards"
    for card in cards.values():
        assert card.params["sha256"] == card.sha256 and card.params["weights"] == card.weights
        for key, pin in (("weights", "sha256"), ("rvq_weights", "rvq_sha256")):
            path = ROOT / "codecs" / card.params[key]
            assert sha(path) == card.params[pin] and path.stat().st_size <= 8e6  # small enough to ship in git


def test_autoencoder_decoder_stage_keeps_the_latents(tmp_path, tiny):
    from evalkit.neural.ladiff import load_autoencoder
    from evalkit.neural.train import TrainConfig, Trainer

    path = _train_config(tmp_path, tiny, "autoencoder", 3)
    config = yaml.safe_load(path.read_text())
    config["model"] = {"init": str(tiny["ae"]), "freeze_encoder": True}
    path.write_text(yaml.safe_dump(config))
    trainer = Trainer(TrainConfig.load(path), log=lambda *a, **k: None)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    after = load_autoencoder(tmp_path / "run" / "model.pt").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))


def test_int8_export_keeps_the_model_close(tmp_path):
    torch.manual_seed(0)
    model, autoencoder = (
        LatentDiffusion(DiffusionConfig.from_dict(TINY_DIFFUSION)),
        ContinuousAE(AEConfig.from_dict(TINY_AE)),
    )
    full, _, _, _ = load_ladiff(save_ladiff(model, autoencoder, "codes", tmp_path / "f16.pt"))
    small, _, _, codes = load_ladiff(save_ladiff(model, autoencoder, "codes", tmp_path / "i8.pt", int8=True))
    assert codes == "codes" and (tmp_path / "i8.pt").stat().st_size < (tmp_path / "f16.pt").stat().st_size
    for (name, a), b in zip(full.state_dict().items(), small.state_dict().values()):
        assert torch.allclose(a, b, atol=a.abs().max().item() / 127 + 1e-3), name
