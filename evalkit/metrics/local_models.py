"""Metrics whose weights the user provides by path: UTMOS and NISQA exports, a Whisper checkpoint.

Nothing is downloaded. Each metric is registered and listed by `evalkit metrics`; it reports
itself unavailable, naming the environment variable to set, until that variable points at an
existing file or folder. One model per path is loaded per process.

* UTMOS, NISQA: a TorchScript (.pt, .jit) or ONNX (.onnx) export that maps a (1, samples)
  float32 waveform at 16 kHz to the MOS (its first output element).
* Whisper: a Hugging Face Whisper folder (config, weights, tokenizer, feature extractor), as
  saved by `save_pretrained`; greedy decoding in English.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..content.asr import error_rates
from ..errors import MetricError, first_line
from .base import MetricSpec, metric

__all__ = ["utmos", "nisqa", "whisper_mismatch", "ENV"]

ENV = {"utmos": "EVALKIT_UTMOS_WEIGHTS", "nisqa": "EVALKIT_NISQA_WEIGHTS", "whisper": "EVALKIT_WHISPER_PATH"}
RATE = 16000
MAX_NEW_TOKENS = 128  # a transcript of up to ~30 s of speech


def _weights(name: str) -> Path:
    return Path(os.environ[ENV[name]])


@lru_cache(maxsize=4)
def _waveform_model(path: Path):
    """A callable (1, samples) float32 -> first output element, from a TorchScript or ONNX file."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: np.asarray(session.run(None, {name: x})[0]).ravel()[0]
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as err:
        raise MetricError(f"{path}: not a TorchScript or ONNX export ({first_line(err)})") from None

    def run(x: np.ndarray) -> float:
        with torch.inference_mode():
            out = module(torch.from_numpy(x))
        return (out[0] if isinstance(out, (tuple, list)) else out).reshape(-1)[0].item()

    return run


def _mos(name: str, deg: np.ndarray) -> float:
    x = np.clip(deg, -1.0, 1.0).astype(np.float32)[None, :]
    return float(_waveform_model(_weights(name))(x))


def _hook_spec(name: str, weights: str, **fields) -> MetricSpec:
    common = dict(version="1", sample_rates=(RATE,), min_duration=0.5, weights_env=ENV[weights])
    return MetricSpec(name=name, **{**common, **fields})


def _mos_spec(name: str, output: str, title: str) -> MetricSpec:
    return _hook_spec(
        name,
        name,
        higher_is_better=True,
        needs_reference=False,
        package="torch",
        outputs=(output,),
        description=f"{title} from local weights ({ENV[name]}: a TorchScript or ONNX export taking the 16 kHz "
        "waveform), non-intrusive; 1-5",
        requires=("torch", "onnxruntime"),
        install="pip install torch==2.13.0 onnxruntime==1.32.0",
    )


@metric(_mos_spec("utmos", "utmos", "UTMOS MOS prediction"))
def utmos(ref: None, deg: np.ndarray, sample_rate: int) -> float:
    return _mos("utmos", deg)


@metric(_mos_spec("nisqa", "nisqa_mos", "NISQA overall MOS"))
def nisqa(ref: None, deg: np.ndarray, sample_rate: int) -> float:
    return _mos("nisqa", deg)


@lru_cache(maxsize=2)
def _whisper(path: Path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(str(path), local_files_only=True)
    model = WhisperForConditionalGeneration.from_pretrained(str(path), local_files_only=True).eval()
    return processor, model


def _transcribe(x: np.ndarray) -> str:
    import torch

    processor, model = _whisper(_weights("whisper"))
    features = processor(x.astype(np.float32), sampling_rate=RATE, return_tensors="pt").input_features
    with torch.inference_mode():
        room = model.config.max_target_positions - 4  # start, language, task and timestamp tokens
        tokens = model.generate(features, max_new_tokens=min(MAX_NEW_TOKENS, room), do_sample=False, num_beams=1)
    return processor.batch_decode(tokens, skip_special_tokens=True)[0]


@metric(
    _hook_spec(
        "whisper_mismatch",
        "whisper",
        higher_is_better=False,
        needs_reference=True,
        package="transformers",
        outputs=("wer_whisper", "cer_whisper"),
        description=f"ASR mismatch with a local Whisper checkpoint ({ENV['whisper']}): word and character error rates "
        "(jiwer) of the decoded audio's transcript against the reference's",
        requires=("transformers", "torch", "jiwer"),
        install="pip install --no-deps -r requirements-adapters.txt",
        needs_alignment=False,
    )
)
def whisper_mismatch(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    reference = _transcribe(ref)
    if not reference.strip():
        raise MetricError("Whisper heard no words in the reference")
    wer, cer = error_rates(reference, _transcribe(deg))
    return {"wer_whisper": wer, "cer_whisper": cer}
