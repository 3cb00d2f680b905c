"""Non-intrusive quality predictors from speechmos's shipped ONNX models: DNSMOS P.835 and P.808,
personalised DNSMOS, and PLCMOS v2 (packet-loss concealment quality).

Each model's ONNX session is built once per process with one thread (workers are single-threaded
processes; letting every session spawn a thread per core oversubscribes the machine). Scores are
speechmos's own: its DNSMOS and PLCMOS objects run with the sessions swapped for these.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .base import MetricSpec, metric

__all__ = ["dnsmos", "dnsmos_personalized", "plcmos"]

# speechmos declares no dependencies; it needs these three at import time.
INSTALL = "pip install speechmos==0.0.1.1 onnxruntime librosa requests"
REQUIRES = ("speechmos", "onnxruntime", "librosa", "requests")
PLCMOS_SEED = 0  # PLCMOS averages over random "rater" embeddings: a fixed seed makes it repeatable


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _models() -> Path:
    import speechmos

    return Path(speechmos.__file__).parent


@lru_cache(maxsize=2)
def _dnsmos_model(personalized: bool):
    """speechmos's DNSMOS scorer for the plain or personalised P.835 model, loaded once per process."""
    from speechmos.dnsmos import DNSMOS

    primary = _models() / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    p808 = _models() / "dnsmos_models" / "model_v8.onnx"
    model = DNSMOS.__new__(DNSMOS)  # skip its constructor's default (all-core) sessions
    model.primary_model_path = str(primary)
    model.onnx_sess, model.p808_onnx_sess = _session(primary), _session(p808)
    return model


@lru_cache(maxsize=1)
def _plcmos_model():
    from speechmos.plcmos import PLCMOS

    model = PLCMOS.__new__(PLCMOS)
    model.model_name, model.embed_rounds, model.max_lens = "plcmos_v2", 15, 999999999999
    model.model_path = str(_models() / "plcmos_models" / "plcmos_v2.onnx")
    model.session = _session(Path(model.model_path))
    return model


def _dnsmos_scores(deg: np.ndarray, sample_rate: int, personalized: bool) -> dict:
    # speechmos rejects samples outside [-1, 1]; clip as a 16-bit file would. Clips shorter
    # than the model's 9 s window are tiled by speechmos, as in Microsoft's reference script.
    return _dnsmos_model(personalized)(np.clip(deg, -1.0, 1.0), sample_rate, personalized)


@metric(MetricSpec(
    name="dnsmos", version="1", higher_is_better=True, needs_reference=False,
    sample_rates=(16000,), min_duration=1.0, package="speechmos",
    outputs=("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
    description="DNSMOS P.835 (signal, background, overall) and P.808 MOS, non-intrusive, 16 kHz; 1-5",
    requires=REQUIRES, install=INSTALL,
    needs_alignment=False,
))
def dnsmos(ref: None, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    scores = _dnsmos_scores(deg, sample_rate, personalized=False)
    return {"dnsmos_sig": scores["sig_mos"], "dnsmos_bak": scores["bak_mos"], "dnsmos_ovrl": scores["ovrl_mos"],
            "dnsmos_p808": scores["p808_mos"]}


@metric(MetricSpec(
    name="dnsmos_personalized", version="1", higher_is_better=True, needs_reference=False,
    sample_rates=(16000,), min_duration=1.0, package="speechmos",
    outputs=("pdnsmos_sig", "pdnsmos_bak", "pdnsmos_ovrl"),
    description="Personalised DNSMOS P.835 (signal, background, overall; a neighbouring talker counts as "
                "background), non-intrusive, 16 kHz; 1-5",
    requires=REQUIRES, install=INSTALL,
))
def dnsmos_personalized(ref: None, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    scores = _dnsmos_scores(deg, sample_rate, personalized=True)
    return {"pdnsmos_sig": scores["sig_mos"], "pdnsmos_bak": scores["bak_mos"], "pdnsmos_ovrl": scores["ovrl_mos"]}


@metric(MetricSpec(
    name="plcmos", version="1", higher_is_better=True, needs_reference=False,
    sample_rates=(16000,), min_duration=1.0, package="speechmos", outputs=("plcmos",),
    description="PLCMOS v2 (INTERSPEECH 2023): non-intrusive MOS of packet-loss concealment, 16 kHz, mean over "
                "15 rater embeddings drawn with a fixed seed; about 1-5",
    requires=("speechmos", "onnxruntime"), install=INSTALL,
))
def plcmos(ref: None, deg: np.ndarray, sample_rate: int) -> float:
    state = np.random.get_state()  # speechmos draws its rater embeddings from NumPy's global generator
    np.random.seed(PLCMOS_SEED)
    try:
        return float(_plcmos_model().get_mos(np.clip(deg, -1.0, 1.0), sample_rate))
    finally:
        np.random.set_state(state)
