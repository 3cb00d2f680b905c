"""Non-intrusive quality predictors from speechmos's shipped ONNX models: DNSMOS P.835 and P.808,
personalised DNSMOS, and PLCMOS v2 (packet-loss concealment quality).

Each model's ONNX session is built once per process with one thread (workers are single-threaded
processes; letting every session spawn a thread per core oversubscribes the machine). Scores are
speechmos's own: its PLCMOS object runs with the session swapped for this one, and DNSMOS runs
speechmos's windows, features and calibration with the P.835 network's convolutions shared
between overlapping windows (dnsmos_windows; equal to speechmos's scores to float rounding).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from . import dnsmos_windows
from .base import MetricSpec, metric

__all__ = ["dnsmos", "dnsmos_personalized", "plcmos"]

# speechmos declares no dependencies; it needs these three at import time.
INSTALL = "pip install speechmos==0.0.1.1 onnxruntime onnx librosa requests"
REQUIRES = ("speechmos", "onnxruntime", "librosa", "requests")
PLCMOS_SEED = 0  # PLCMOS averages over random "rater" embeddings: a fixed seed makes it repeatable


def _session(model: Path | bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _models() -> Path:
    import speechmos

    return Path(speechmos.__file__).parent


@lru_cache(maxsize=2)
def _dnsmos_model(personalized: bool):
    """speechmos's DNSMOS scorer for the plain or personalised P.835 model, and that model split into
    its shared convolutions and its per-window head; loaded once per process."""
    from speechmos.dnsmos import DNSMOS

    primary = _models() / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    p808 = _models() / "dnsmos_models" / "model_v8.onnx"
    model = DNSMOS.__new__(DNSMOS)  # skip its constructor's default (all-core) sessions
    model.primary_model_path = str(primary)
    model.p808_onnx_sess = _session(p808)
    return model, *dnsmos_windows.split_model(primary, _session)


@lru_cache(maxsize=1)
def _plcmos_model():
    from speechmos.plcmos import PLCMOS

    model = PLCMOS.__new__(PLCMOS)
    model.model_name, model.embed_rounds, model.max_lens = "plcmos_v2", 15, 999999999999
    model.model_path = str(_models() / "plcmos_models" / "plcmos_v2.onnx")
    model.session = _session(Path(model.model_path))
    return model


def _dnsmos_scores(deg: np.ndarray, sample_rate: int, personalized: bool) -> dict:
    """speechmos's DNSMOS.__call__, with the P.835 network run once over the windows' audio."""
    model, trunk, head = _dnsmos_model(personalized)
    # speechmos rejects samples outside [-1, 1]; clip as a 16-bit file would. Clips shorter
    # than the model's 9 s window are tiled by speechmos, as in Microsoft's reference script.
    audio = dnsmos_windows.tiled(np.clip(deg, -1.0, 1.0), sample_rate)
    starts = dnsmos_windows.window_starts(len(audio), sample_rate)
    raw = dnsmos_windows.raw_scores(trunk, head, audio, starts, len(deg) if len(audio) > len(deg) else None)
    sig, bak, ovr = model.get_polyfit_val(raw[:, 0], raw[:, 1], raw[:, 2], personalized)
    p808 = _p808(model.p808_onnx_sess, dnsmos_windows.p808_features(audio, starts))
    return {"sig_mos": np.mean(sig), "bak_mos": np.mean(bak), "ovrl_mos": np.mean(ovr), "p808_mos": np.mean(p808)}


def _p808(session, features: np.ndarray) -> np.ndarray:
    """P.808 MOS of each window, a few windows per call (bounded memory)."""
    batch = dnsmos_windows.BATCH // 4
    return np.concatenate(
        [session.run(None, {"input_1": features[i : i + batch]})[0][:, 0] for i in range(0, len(features), batch)]
    )


@metric(
    MetricSpec(
        name="dnsmos",
        version="1",
        higher_is_better=True,
        needs_reference=False,
        sample_rates=(16000,),
        min_duration=1.0,
        package="speechmos",
        outputs=("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
        description="DNSMOS P.835 (signal, background, overall) and P.808 MOS, non-intrusive, 16 kHz; 1-5",
        requires=REQUIRES,
        install=INSTALL,
        needs_alignment=False,
    )
)
def dnsmos(ref: None, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    scores = _dnsmos_scores(deg, sample_rate, personalized=False)
    return {
        "dnsmos_sig": scores["sig_mos"],
        "dnsmos_bak": scores["bak_mos"],
        "dnsmos_ovrl": scores["ovrl_mos"],
        "dnsmos_p808": scores["p808_mos"],
    }


@metric(
    MetricSpec(
        name="dnsmos_personalized",
        version="1",
        higher_is_better=True,
        needs_reference=False,
        sample_rates=(16000,),
        min_duration=1.0,
        package="speechmos",
        outputs=("pdnsmos_sig", "pdnsmos_bak", "pdnsmos_ovrl"),
        description="Personalised DNSMOS P.835 (signal, background, overall; a neighbouring talker counts as "
        "background), non-intrusive, 16 kHz; 1-5",
        requires=REQUIRES,
        install=INSTALL,
    )
)
def dnsmos_personalized(ref: None, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    scores = _dnsmos_scores(deg, sample_rate, personalized=True)
    return {"pdnsmos_sig": scores["sig_mos"], "pdnsmos_bak": scores["bak_mos"], "pdnsmos_ovrl": scores["ovrl_mos"]}


@metric(
    MetricSpec(
        name="plcmos",
        version="1",
        higher_is_better=True,
        needs_reference=False,
        sample_rates=(16000,),
        min_duration=1.0,
        package="speechmos",
        outputs=("plcmos",),
        description="PLCMOS v2 (INTERSPEECH 2023): non-intrusive MOS of packet-loss concealment, 16 kHz, mean over "
        "15 rater embeddings drawn with a fixed seed; about 1-5",
        requires=("speechmos", "onnxruntime"),
        install=INSTALL,
    )
)
def plcmos(ref: None, deg: np.ndarray, sample_rate: int) -> float:
    state = np.random.get_state()  # speechmos draws its rater embeddings from NumPy's global generator
    np.random.seed(PLCMOS_SEED)
    try:
        return float(_plcmos_model().get_mos(np.clip(deg, -1.0, 1.0), sample_rate))
    finally:
        np.random.set_state(state)
