"""Neural codecs: bit packing, corpora loaders, RVQ model and quantizer, training, adapters.

torch-dependent tests skip when torch is missing; adapter tests skip when their package is.
Adapters run small random-weight models built here (no downloads; HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from fuzz_codecs import TINY_BUILDERS  # tiny random-weight adapters, shared with the bitstream fuzz test
from neural_fixtures import decoded_in_chunks, rvq_train_config, sha, voice

from evalkit.audio import Audio, resample, save
from evalkit.cards import load_cards
from evalkit.errors import CodecError, ConfigError
from evalkit.harness import roundtrip
from evalkit.neural.bitpack import code_bits, frames_per_whole_bytes, pack_codes, unpack_codes
from evalkit.neural.corpora import librispeech_rows, libritts_rows, vctk_rows, write_manifest

ROOT = Path(__file__).resolve().parent.parent


# -- bit packing (no torch) -----------------------------------------------------------------


def test_pack_unpack_round_trip_at_width():
    rng = np.random.default_rng(1)
    for bits in (1, 3, 10, 11, 12):
        codes = rng.integers(0, 1 << bits, 37)
        data = pack_codes(codes, bits)
        assert len(data) == (37 * bits + 7) // 8
        assert np.array_equal(unpack_codes(data, bits, 37), codes)


def test_pack_rejects_out_of_range_and_short_packets():
    with pytest.raises(CodecError):
        pack_codes(np.array([1024]), 10)
    with pytest.raises(CodecError):
        unpack_codes(b"\x00", 10, 1)


def test_whole_byte_grouping():
    assert [frames_per_whole_bytes(n * 10) for n in (3, 6, 12)] == [4, 2, 1]
    assert code_bits(1024) == 10 and code_bits(2048) == 11
    with pytest.raises(ValueError):
        code_bits(1000)


# -- corpora loaders on fake folder trees -----------------------------------------------------


def _touch_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save(Audio(voice(0.1), 16000), path)


def test_librispeech_layout(tmp_path):
    chapter = tmp_path / "train-clean-100" / "19" / "198"
    for utt in ("19-198-0000", "19-198-0001"):
        _touch_wav(chapter / f"{utt}.flac")
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 GOOD BYE\n")
    rows = librispeech_rows(tmp_path)
    assert [(r["id"], r["speaker"], r["text"]) for r in rows] == [
        ("librispeech-19-198-0000", "librispeech-19", "HELLO WORLD"),
        ("librispeech-19-198-0001", "librispeech-19", "GOOD BYE"),
    ]


def test_libritts_layout(tmp_path):
    chapter = tmp_path / "dev-clean" / "84" / "121123"
    _touch_wav(chapter / "84_121123_000007_000001.wav")
    (chapter / "84_121123_000007_000001.normalized.txt").write_text("Hello there.")
    (rows,) = [libritts_rows(tmp_path)]
    assert rows[0]["speaker"] == "libritts-84" and rows[0]["text"] == "Hello there."


def test_vctk_layouts_and_manifest(tmp_path):
    _touch_wav(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac")
    _touch_wav(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic2.flac")
    (tmp_path / "txt" / "p225").mkdir(parents=True)
    (tmp_path / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.\n")
    rows = vctk_rows(tmp_path)
    assert [(r["id"], r["text"]) for r in rows] == [("vctk-p225_001", "Please call Stella.")]
    from evalkit.datasets import load_dataset

    items = load_dataset(write_manifest(rows, tmp_path / "m.jsonl"))
    assert items[0].speaker == "vctk-p225" and items[0].load().frames > 0


def test_loaders_refuse_empty_folders(tmp_path):
    for loader in (librispeech_rows, libritts_rows, vctk_rows):
        with pytest.raises(ConfigError):
            loader(tmp_path)


def test_training_set_excludes_every_demo_item():
    sys.path.insert(0, str(ROOT / "scripts"))
    from build_training_set import DEMO_PROMPTS, demo_exclusions

    keys, prompts = demo_exclusions()
    assert prompts == DEMO_PROMPTS and len(keys) == 20  # 5 Asterisk voices x 4 prompts; ARCTIC has no others offline


def test_backends_without_torch_say_how_to_install_it(monkeypatch):
    import importlib.util

    from evalkit.neural.adapters import MimiAdapter
    from evalkit.neural.codec import RVQCodec

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    for backend in (RVQCodec, MimiAdapter):
        assert "pip install torch==2.13.0" in backend.unavailable()


# -- torch: model, quantizer, training --------------------------------------------------------

try:
    import torch
except ImportError:  # the tests below skip; the ones above still run
    torch = None
else:
    from evalkit.neural.model import RVQCodecModel, RVQConfig, load_inference, save_inference

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed: pip install torch==2.13.0")

TINY = {
    "channels": 4,
    "max_channels": 32,
    "strides": [4, 4, 4, 5],
    "dilations": [1],
    "latent_dim": 8,
    "codebook_size": 16,
    "n_q": 4,
    "dropout_choices": [1, 2, 4],
}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A random-weight RVQ model, codebooks k-means'd on test audio, saved as inference weights."""
    torch.manual_seed(0)
    model = RVQCodecModel(RVQConfig.from_dict(TINY))
    model.initialise_codebooks(
        torch.from_numpy(np.stack([voice(1.0, f, i) for i, f in enumerate((100, 150, 220))])[:, None])
    )
    path = save_inference(model, tmp_path_factory.mktemp("rvq") / "tiny.pt")
    return path, sha(path)


@needs_torch
def test_residual_error_falls_as_codebooks_are_added():
    torch.manual_seed(0)
    from evalkit.neural.quantizer import ResidualVQ

    rvq = ResidualVQ(dim=8, n_q=6, size=32)
    z = torch.randn(4, 8, 200)
    rvq.initialise(z)
    errors = [float((rvq.decode(rvq.encode(z, n)) - z).pow(2).mean()) for n in range(1, 7)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors


@needs_torch
def test_ema_update_moves_codes_and_restarts_dead_ones():
    from evalkit.neural.quantizer import EMAQuantizer

    torch.manual_seed(0)
    q = EMAQuantizer(dim=2, size=4, decay=0.5, dead_fraction=0.1)
    q.initialise(torch.randn(64, 2))
    x = torch.randn(64, 2) + 5.0  # data far from every code: most codes die, are restarted on the data
    for _ in range(10):
        q.update(x, q.nearest(x))
    assert (q.codebook - 5.0).abs().max() < 3.0


@needs_torch
def test_streaming_encoder_and_chunked_decode_equal_offline():
    torch.manual_seed(0)
    model = RVQCodecModel(RVQConfig.from_dict(TINY)).eval()
    x = torch.from_numpy(voice(0.8))[None, None]
    z = model.encoder(x)
    chunks, state = [], None
    for start in range(0, x.shape[-1], 640):
        out, state = model.encoder.stream(x[..., start : start + 640], state)
        chunks.append(out)
    assert torch.allclose(torch.cat(chunks, -1), z, atol=1e-5)
    codes = model.encode(x, 4)
    whole = model.decode(codes)
    assert torch.allclose(decoded_in_chunks(model, codes), whole, atol=1e-5)


@needs_torch
def test_model_is_causal():
    torch.manual_seed(0)
    model = RVQCodecModel(RVQConfig.from_dict(TINY)).eval()
    x = torch.from_numpy(voice(0.8))[None, None]
    cut = 6400  # a frame boundary (20 x 320)
    y = x.clone()
    y[..., cut:] = 0
    with torch.no_grad():
        a, b = model.decoder(model.encoder(x)), model.decoder(model.encoder(y))
    assert torch.equal(a[..., :cut], b[..., :cut]) and not torch.equal(a, b)


@needs_torch
def test_inference_checkpoint_round_trip(tiny_weights):
    path, _ = tiny_weights
    model = load_inference(path)
    again = load_inference(path)
    x = torch.from_numpy(voice(0.4))[None, None]
    assert torch.equal(model.decode(model.encode(x, 4)), again.decode(again.encode(x, 4)))
    assert model.config == RVQConfig.from_dict(TINY)
    with pytest.raises(ConfigError):
        load_inference(path.with_name("missing.pt"))


def _fixed_loss(trainer, batch) -> float:
    trainer.model.eval()
    with torch.no_grad():
        y, _, _ = trainer.model(batch, n_q=4)
    return float(trainer.stft_loss(y, batch) + trainer.mel_loss(y, batch))


@needs_torch
def test_training_steps_decrease_the_loss(tmp_path):
    from evalkit.neural.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig.load(rvq_train_config(tmp_path, 25, TINY)), log=lambda *a, **k: None)
    batch = trainer._batch(4)
    trainer.recipe.initialise(trainer._batch(16))
    before = _fixed_loss(trainer, batch)
    for _ in range(25):
        trainer.train_step(trainer._batch(4))
    assert _fixed_loss(trainer, batch) < 0.9 * before


@needs_torch
def test_cli_train_checkpoints_resumes_and_exports(tmp_path, capsys):
    from evalkit.cli import main

    config = rvq_train_config(tmp_path, 4, TINY)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "run"
    assert (run / "checkpoint.pt").is_file() and (run / "model.pt").is_file() and (run / "log.jsonl").is_file()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4
    assert main(["train", str(config), "--steps", "6"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 6
    load_inference(run / "model.pt")


@needs_torch
def test_ctrl_c_in_training_saves_the_step_reached_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from evalkit.cli import main
    from evalkit.neural.train import Trainer

    config, handlers = rvq_train_config(tmp_path, 50, TINY), []  # a checkpoint every 5 steps
    step = Trainer.train_step

    def interrupted_at_step_3(trainer, batch):
        losses = step(trainer, batch)
        handlers.append(signal.getsignal(signal.SIGTERM))
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C, arriving in the middle of training
        return losses

    monkeypatch.setattr(Trainer, "train_step", interrupted_at_step_3)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # also where pytest runs as a background job
    try:
        assert main(["train", str(config)]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back afterwards
    finally:
        signal.signal(signal.SIGINT, before)
    assert "stopped at step 3: checkpoint saved" in capsys.readouterr().out
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert all(handler not in (signal.SIG_DFL, signal.SIG_IGN) for handler in handlers)  # SIGTERM stops so too
    assert main(["train", str(config), "--steps", "5"]) == 0
    assert "resumed from" in capsys.readouterr().out


@needs_torch
@pytest.mark.parametrize("damage", [b"", b"not a checkpoint", "truncated"])
def test_resuming_from_a_damaged_checkpoint_is_one_line(tmp_path, capsys, damage):
    from evalkit.cli import main

    config = rvq_train_config(tmp_path, 2, TINY)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    if damage == "truncated":
        assert main(["train", str(config)]) == 0
        damage = checkpoint.read_bytes()[:1000]  # as a copy cut short leaves it
    checkpoint.parent.mkdir(exist_ok=True)
    checkpoint.write_bytes(damage)
    assert main(["train", str(config), "--steps", "3"]) != 0
    assert f"{checkpoint}: cannot be read as a checkpoint" in capsys.readouterr().err


@needs_torch
def test_train_refuses_a_run_dir_that_is_a_file_and_negative_steps(tmp_path):
    from evalkit.neural.train import train

    config = rvq_train_config(tmp_path, 2, TINY)
    (tmp_path / "run").write_text("")
    with pytest.raises(ConfigError, match="run_dir .* is a file"):
        train(config)
    with pytest.raises(ConfigError, match="steps is -1"):
        train(config, steps=-1)


@needs_torch
def test_adversarial_step_and_bf16_autocast_run_on_cpu(tmp_path):
    from evalkit.neural.train import TrainConfig, Trainer

    config = TrainConfig.load(rvq_train_config(tmp_path, 1, TINY))
    config.losses["adversarial_start"] = 0
    config.run["amp"] = "bf16"  # the GPU path's autocast, exercised on the CPU
    trainer = Trainer(config, log=lambda *a, **k: None)
    trainer.recipe.initialise(trainer._batch(8))
    losses = trainer.train_step(trainer._batch(2))
    assert {"adversarial", "feature", "disc"} <= set(losses) and all(np.isfinite(list(losses.values())))


@needs_torch
def test_training_refuses_held_out_items(tmp_path):
    from evalkit.neural.data import CropSampler, DataConfig

    demo = ROOT / "data" / "demo" / "manifest.jsonl"
    with pytest.raises(ConfigError, match="held-out"):
        CropSampler(DataConfig(train=str(demo), holdout=str(demo)), 16000)


# -- the rvq codec backend --------------------------------------------------------------------


def _contract(codec, audio: Audio) -> None:
    """The parts of the codec contract that hold for random weights (tests/test_codec_contract.py
    checks delay and resemblance for trained cards)."""
    info = codec.info
    run = roundtrip(codec, audio)
    assert isinstance(run.data, bytes) and run.payload_bytes > 0
    assert (run.decoded.frames, run.decoded.sample_rate) == (audio.frames, audio.sample_rate)
    assert run.bitrate == pytest.approx(info.nominal_bitrate, rel=info.bitrate_tolerance)
    native = resample(audio, info.sample_rate)
    assert codec.encode(native) == codec.encode(native)
    for bad in (b"", run.data[: len(run.data) // 2], run.data[:20] + bytes([run.data[20] ^ 0xFF]) + run.data[21:]):
        with pytest.raises(CodecError):
            codec.decode(bad)
    stream = codec.encode_packets(native)
    lossy = [None if i % 3 == 1 else p for i, p in enumerate(stream.packets)]
    concealed = codec.decode_packets(type(stream)(stream.backend, stream.header, lossy))
    assert concealed.frames == native.frames + info.lookahead_samples and np.all(np.isfinite(concealed.samples))


def _rvq(tiny_weights, n_q: int):
    from evalkit.neural.codec import RVQCodec

    path, sha = tiny_weights
    return RVQCodec(str(path), sha, n_q)


@needs_torch
@pytest.mark.parametrize("n_q", [1, 2, 4])
def test_rvq_codec_contract_and_bits_per_frame(tiny_weights, n_q):
    codec = _rvq(tiny_weights, n_q)
    info = codec.info
    assert info.nominal_bitrate == n_q * 4 * 50  # 16-entry codebooks: 4 bits a code, 50 frames/s
    assert info.frame_samples == 320 * frames_per_whole_bytes(n_q * 4) and info.lookahead_samples == 0
    stream = codec.encode_packets(Audio(voice(1.0), 16000))
    assert {len(p) for p in stream.packets} == {n_q * 4 * codec.frames_per_packet // 8}
    _contract(codec, Audio(voice(1.3), 16000, "voice"))


@needs_torch
def test_rvq_leading_loss_is_silent_and_later_loss_repeats(tiny_weights):
    codec = _rvq(tiny_weights, 4)
    stream = codec.encode_packets(Audio(voice(1.0), 16000))
    first_lost = [None] + stream.packets[1:]
    out = codec.decode_packets(type(stream)(stream.backend, stream.header, first_lost)).samples[0]
    assert not np.any(out[:320]) and np.any(out[320:])


@needs_torch
def test_rvq_weights_are_pinned(tiny_weights, tmp_path):
    from evalkit.neural.codec import RVQCodec

    path, sha = tiny_weights
    with pytest.raises(ConfigError, match="sha256"):
        RVQCodec(str(path), "0" * 64, 4)
    with pytest.raises(ConfigError, match="n_q"):
        RVQCodec(str(path), sha, 5)


@needs_torch
def test_rvq_stream_from_other_configuration_is_refused(tiny_weights):
    data = _rvq(tiny_weights, 2).encode(Audio(voice(0.5), 16000))
    with pytest.raises(CodecError, match="configured"):
        _rvq(tiny_weights, 4).decode(data)


def test_rvq_cards_pin_their_weights():
    cards = {name: card for name, card in load_cards().items() if card.backend == "rvq"}
    assert cards, "no rvq cards"
    for card in cards.values():
        assert card.params["sha256"] == card.sha256 and card.params["weights"] == card.weights
        weights = ROOT / "codecs" / card.weights
        assert sha(weights) == card.sha256 and weights.stat().st_size <= 20e6


# -- pretrained-codec adapters, random weights ------------------------------------------------


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _skip_unavailable(adapter) -> None:
    reason = adapter.unavailable()
    if reason:
        pytest.skip(reason)


@needs_torch
def test_encodec_adapter_contract(tmp_path):
    from evalkit.neural.adapters import ENCODEC_24KHZ, EncodecAdapter, _build_encodec

    _skip_unavailable(EncodecAdapter)
    arch = {"n_filters": 2, "ratios": [8, 5, 4, 2], "dimension": 8, "lstm": 0, "target_bandwidths": [1.5, 3.0]}
    torch.manual_seed(0)
    torch.save(_build_encodec({**ENCODEC_24KHZ, **arch}).state_dict(), tmp_path / "encodec.th")
    codec = EncodecAdapter(str(tmp_path / "encodec.th"), sha(tmp_path / "encodec.th"), 3.0, arch)
    assert codec.n_q == 4 and codec.info.nominal_bitrate == 3000 and "torchaudio" not in sys.modules
    _contract(codec, Audio(voice(1.0), 16000, "voice"))
    with pytest.raises(ConfigError, match="sha256"):
        EncodecAdapter(str(tmp_path / "encodec.th"), "f" * 64, 3.0, arch)


@needs_torch
def test_snac_adapter_contract(tmp_path):
    from evalkit.neural.adapters import SnacAdapter

    _skip_unavailable(SnacAdapter)
    codec = TINY_BUILDERS["snac"](tmp_path)
    assert codec.info.nominal_bitrate == 24000 / (8 * 2) * (1 + 2) * 4  # a 2-latent unit: 1 coarse + 2 fine 4-bit codes
    _contract(codec, Audio(voice(0.5), 16000, "voice"))
    rt = roundtrip(codec, Audio(voice(0.5), 16000))
    assert np.array_equal(codec.decode(rt.data).samples, codec.decode(rt.data).samples)  # seeded decoder noise


@needs_torch
def test_mimi_adapter_contract(tmp_path):
    from evalkit.neural.adapters import MimiAdapter

    _skip_unavailable(MimiAdapter)
    codec = TINY_BUILDERS["mimi"](tmp_path)
    assert codec.info.nominal_bitrate == 2 * 5 * 24000 / codec.model.config.frame_size
    _contract(codec, Audio(voice(0.5), 16000, "voice"))


def test_dac_reports_why_it_is_unavailable():
    from evalkit.neural.adapters import DacAdapter

    reason = DacAdapter.unavailable()
    if reason is None:
        pytest.skip("dac imports here")
    assert "torchaudio" in reason or "not installed" in reason


@needs_torch
def test_train_without_its_training_set_says_how_to_build_it(tmp_path, capsys):
    from evalkit.cli import main

    config = yaml.safe_load(rvq_train_config(tmp_path, 1, TINY).read_text())
    config["data"]["train"] = str(tmp_path / "results" / "training-set" / "manifest.jsonl")
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "missing.yaml")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        "missing.yaml: data.train:" in line
        and "does not exist" in line
        and "python scripts/build_training_set.py" in line
    )
