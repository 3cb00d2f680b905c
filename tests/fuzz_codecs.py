"""The decoding side of the bitstream fuzz test, run as its own process so a crash is caught.

`python tests/fuzz_codecs.py` reads one JSON request per line on stdin and answers one JSON
line each: {"op": "build", "spec": "card:opus-12k" | "tiny:encodec"} builds a codec and answers
with a valid stream of it; {"op": "decode", "data": base64} decodes with the last codec built
and answers with the outcome ("ok", "CodecError" or "OtherError: message"), the peak of traced
allocations, the growth of the resident set and the memory budget of that stream. A segfault
or an abort in a decoder library ends this process; the test then names the input.

Backends without a codec card are built here as tiny random-weight models (`TINY_BUILDERS`).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

FLOOR_BYTES = 1 << 20  # decoder state, library buffers and Python objects of any stream
ADDRESS_LIMIT = 3 << 30  # a runaway allocation fails here instead of exhausting the machine


def _seed_audio(rate: int) -> np.ndarray:
    """A quarter second of a voiced tone in noise: every codec spends bits on it."""
    t = np.arange(rate // 4) / rate
    rng = np.random.default_rng(0)
    return (
        0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.02 * rng.standard_normal(len(t))
    ).astype(np.float32)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny_encodec(folder: Path):
    import torch

    from evalkit.neural.adapters import ENCODEC_24KHZ, EncodecAdapter, _build_encodec

    arch = {"n_filters": 2, "ratios": [8, 5, 4, 2], "dimension": 8, "lstm": 0, "target_bandwidths": [1.5, 3.0]}
    torch.manual_seed(0)
    torch.save(_build_encodec({**ENCODEC_24KHZ, **arch}).state_dict(), folder / "encodec.th")
    return EncodecAdapter(str(folder / "encodec.th"), _sha(folder / "encodec.th"), 3.0, arch)


def _tiny_snac(folder: Path):
    import torch
    from snac import SNAC

    from evalkit.neural.adapters import SnacAdapter

    config = {
        "sampling_rate": 24000,
        "encoder_dim": 8,
        "encoder_rates": [2, 4],
        "decoder_dim": 32,
        "decoder_rates": [4, 2],
        "attn_window_size": None,
        "codebook_size": 16,
        "codebook_dim": 4,
        "vq_strides": [2, 1],
    }
    torch.manual_seed(0)
    (folder / "config.json").write_text(json.dumps(config))
    torch.save(SNAC(**config).state_dict(), folder / "pytorch_model.bin")
    return SnacAdapter(str(folder), _sha(folder / "pytorch_model.bin"))


def _tiny_mimi(folder: Path):
    import torch
    from transformers import MimiConfig, MimiModel

    from evalkit.neural.adapters import MimiAdapter

    config = MimiConfig(
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[4, 4],
        codebook_size=32,
        codebook_dim=8,
        num_quantizers=4,
        num_semantic_quantizers=1,
        vector_quantization_hidden_dimension=8,
        upsample_groups=16,
        num_hidden_layers=1,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=16,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    MimiModel(config).save_pretrained(folder)
    return MimiAdapter(str(folder), _sha(folder / "model.safetensors"), n_q=2)


def _tiny_ladiff(folder: Path):
    import torch

    from evalkit.neural.ladiff import (
        AEConfig,
        ContinuousAE,
        DiffusionConfig,
        LatentDiffusion,
        codes_fingerprint,
        save_ladiff,
    )
    from evalkit.neural.ladiff_codec import LaDiffCodec
    from evalkit.neural.model import RVQCodecModel, RVQConfig, save_inference

    torch.manual_seed(0)
    rvq = RVQCodecModel(
        RVQConfig.from_dict(
            {
                "channels": 4,
                "max_channels": 16,
                "strides": [4, 4, 4, 5],
                "dilations": [1],
                "latent_dim": 8,
                "codebook_size": 16,
                "n_q": 4,
                "dropout_choices": [2, 4],
            }
        )
    )
    rvq.initialise_codebooks(torch.from_numpy(np.stack([_seed_audio(16000)] * 2))[:, None])
    autoencoder = ContinuousAE(
        AEConfig.from_dict({"channels": 4, "max_channels": 16, "strides": [2, 4, 5], "dilations": [1], "latent_dim": 8})
    )
    diffusion = LatentDiffusion(
        DiffusionConfig.from_dict(
            {
                "latent_dim": 8,
                "code_dim": 8,
                "upsampler_channels": 16,
                "widths": [8, 16, 16],
                "emb_dim": 16,
                "mid_dilations": [1, 2],
                "max_n_q": 4,
            }
        )
    )
    rvq_path = save_inference(rvq, folder / "rvq.pt")
    path = save_ladiff(diffusion, autoencoder, codes_fingerprint(rvq), folder / "ladiff.pt")
    return LaDiffCodec(str(rvq_path), _sha(rvq_path), str(path), _sha(path), n_q=2, steps=3, sampler="ddpm")


def _tiny_nmf(folder: Path):
    """A rank-4 NMF bundle learnt in a few iterations on the seed audio's own blocks."""
    from evalkit.nmf.basis import learn_nmf
    from evalkit.nmf.codec import NMFCodec
    from evalkit.nmf.model import LowRankModel, Quantizer, config_key, save_bundle
    from evalkit.nmf.spectra import BLOCK, RATE, block_magnitudes

    x = _seed_audio(RATE)
    blocks = block_magnitudes(np.concatenate([x, np.zeros(-len(x) % BLOCK, np.float32)])).astype(np.float64)
    model = LowRankModel("nmf", learn_nmf(blocks, 4, iterations=20, seed=0, beta=0.0), None, 0.0, 1.0)
    quantizer = Quantizer.train("nmf", 6.0, model.analyse(blocks))
    configuration = {"basis": "nmf", "rank": 4, "step_db": 6.0, "bitrate": 500.0}
    path = save_bundle(
        folder / "nmf.npz",
        {"configurations": [configuration]},
        {config_key("nmf", 4): model},
        {config_key("nmf", 4, 6.0): quantizer},
    )
    return NMFCodec(str(path), _sha(path), "nmf", 4, 6.0, iterations=2)


LPCNET_TINY = {"cond": 16, "embed": 8, "gru1": 16, "gru2": 8, "hidden": 16, "subframe": 80}


def random_lpcnet_codebooks(seed: int = 0):
    """Quantizer codebooks of the right shapes and random values (decoding any bits is defined)."""
    from evalkit.lpcnet.quantizer import Codebooks

    rng = np.random.default_rng(seed)
    return Codebooks(
        np.array([-10.0, 35.0]),
        np.linspace(-0.1, 0.1, 8),
        np.array([0.1, 0.4, 0.7, 0.9]),
        rng.standard_normal((3, 1024, 17)),
        0.3 * rng.standard_normal((2048, 18)),
        rng.uniform(0, 1, (8, 2)),
    )


def tiny_lpcnet_weights(folder: Path, groups: int = 2) -> tuple[Path, Path]:
    """(generic weights, personal bundle with `groups` speaker groups) of tiny random LPCNet vocoders."""
    import torch

    from evalkit.lpcnet.framewise import FramewiseVocoder, VocoderConfig
    from evalkit.lpcnet.speaker_train import SpeakerNet
    from evalkit.lpcnet.weights import save_weights, state_arrays

    torch.manual_seed(0)
    config = VocoderConfig(**LPCNET_TINY)
    generic = save_weights(folder / "generic.npz", FramewiseVocoder(config), random_lpcnet_codebooks())
    arrays = {f"speaker.{k}": v for k, v in SpeakerNet(hidden=8, dims=4).arrays().items()}
    arrays["speaker.centroids"] = np.eye(groups, 4)
    for group in range(groups):
        torch.manual_seed(group + 1)
        arrays.update(
            {
                k.replace("vocoder.", f"group{group}.vocoder."): v
                for k, v in state_arrays(FramewiseVocoder(config)).items()
            }
        )
    personal = save_weights(
        folder / "personal.npz", config={"groups": groups, "vocoder_config": config.to_dict()}, extra_arrays=arrays
    )
    return generic, personal


def _tiny_lpcnet(folder: Path):
    from evalkit.lpcnet.codec import LPCNetCodec

    generic, _ = tiny_lpcnet_weights(folder)
    return LPCNetCodec(str(generic), _sha(generic))


def _tiny_lpcnet_personal(folder: Path):
    from evalkit.lpcnet.codec import PersonalLPCNetCodec

    generic, personal = tiny_lpcnet_weights(folder)
    return PersonalLPCNetCodec(str(generic), _sha(generic), str(personal), _sha(personal))


def tiny_predictive_bundle(folder: Path, lpcnet_weights: Path) -> Path:
    """A predictive bundle of a random predictor, random codebooks and entropy models counted on the
    seed audio's features, with one allocation `s1-fine50` (half the frames fine)."""
    import torch

    from evalkit.lpcnet.features import features
    from evalkit.predictive.model import PredictiveBundle, save_bundle
    from evalkit.predictive.network import FramePredictor, predictor_arrays
    from evalkit.predictive.pitch import PitchCoder
    from evalkit.predictive.rates import add_allocations
    from evalkit.predictive.residual import CODEBOOK_SHAPES, Codebooks

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    books = Codebooks(
        **{
            name: np.sort(rng.standard_normal(shape), axis=0) if len(shape) == 1 else 0.5 * rng.standard_normal(shape)
            for name, shape in CODEBOOK_SHAPES.items()
        }
    )
    items = [features(np.tile(_seed_audio(16000), 4))]
    bundle = PredictiveBundle(
        {"predictor": {}},
        {**{f"predictor.{k}": v for k, v in predictor_arrays(FramePredictor()).items()}, **books.arrays()},
    )
    pitch = PitchCoder.from_weights(lpcnet_weights).fields_per_packet
    bundle = add_allocations(bundle, items, items, pitch, log=lambda _: None, allocations=((1, 50),))
    return save_bundle(folder / "predictive.npz", bundle)


def _tiny_predictive(folder: Path):
    from evalkit.predictive.codec import PredictiveCodec

    generic, _ = tiny_lpcnet_weights(folder)
    path = tiny_predictive_bundle(folder, generic)
    return PredictiveCodec(str(path), _sha(path), "s1-fine50", str(generic), _sha(generic))


# Backends without a codec card (their weights cannot ship, or are not built yet), or whose weights
# could be absent: a tiny model of each.
TINY_BUILDERS = {
    "encodec": _tiny_encodec,
    "snac": _tiny_snac,
    "mimi": _tiny_mimi,
    "nmf": _tiny_nmf,
    "lpcnet": _tiny_lpcnet,
    "lpcnet-personal": _tiny_lpcnet_personal,
    "ladiff": _tiny_ladiff,
    "predictive": _tiny_predictive,
}


def build(spec: str):
    """A codec from "card:NAME" or "tiny:BACKEND"."""
    kind, name = spec.split(":", 1)
    if kind == "card":
        from evalkit.cards import find_card

        return find_card(name).build()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return TINY_BUILDERS[name](Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-")))


def budget(codec, data: bytes) -> int:
    """Bytes a decode of `data` may allocate: 4x the float32 audio its header declares (at most
    what its packets can carry, plus the lookahead and two frames of flush), twice the stream
    itself (its packets are copied out of it) and a fixed floor."""
    from evalkit.codecs import Bitstream
    from evalkit.errors import CodecError

    info = codec.info
    try:
        stream = Bitstream.from_bytes(data, codec.backend)
    except CodecError:
        return 2 * len(data) + FLOOR_BYTES
    frames = stream.header.get("frames") if isinstance(stream.header, dict) else None
    frames = frames if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0 else 0
    frames = min(frames, len(stream.packets) * info.frame_samples)
    declared = 4 * info.channels * (frames + info.lookahead_samples + 2 * info.frame_samples)
    return 4 * declared + 2 * len(data) + FLOOR_BYTES


def _rss_high_water() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_high_water() -> int:
    """Reset the resident-set high-water mark to the current size and return that size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _rss_high_water()


def decode(codec, data: bytes) -> dict:
    from evalkit.errors import CodecError

    limit = budget(codec, data)
    start = _reset_high_water()
    tracemalloc.reset_peak()
    traced = tracemalloc.get_traced_memory()[0]
    try:
        audio = codec.decode(data)
        outcome = "ok" if np.all(np.isfinite(audio.samples)) else "OtherError: non-finite samples"
    except CodecError as err:
        outcome = "CodecError" if "\n" not in str(err) else f"OtherError: a CodecError of several lines: {err!r}"
    except BaseException as err:  # noqa: BLE001 - reporting exactly this is the point
        outcome = f"OtherError: {type(err).__name__}: {str(err)[:300]}"
    peak = tracemalloc.get_traced_memory()[1] - traced
    return {"outcome": outcome, "peak": peak, "rss_growth": _rss_high_water() - start, "budget": limit}


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the answers
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))
    codec = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "build":
            codec = build(request["spec"])
            info = codec.info
            from evalkit.audio import Audio

            data = codec.encode(Audio(_seed_audio(info.sample_rate), info.sample_rate, "fuzz-seed"))
            tracemalloc.start()  # only now: tracing slows imports and model building severalfold
            decode(codec, data)  # warm the decoder up: its first-use tables are no input's doing
            answer = {"stream": base64.b64encode(data).decode()}
        else:
            answer = decode(codec, base64.b64decode(request["data"]))
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
