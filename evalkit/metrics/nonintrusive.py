"""Non-intrusive quality predictors: DNSMOS P.835 and P.808 (Microsoft's ONNX models via speechmos)."""

from __future__ import annotations

import numpy as np

from .base import MetricSpec, metric

__all__ = ["dnsmos"]

# speechmos declares no dependencies; it needs these three at import time.
INSTALL = "pip install speechmos==0.0.1.1 onnxruntime librosa requests"


@metric(MetricSpec(
    name="dnsmos", version="1", higher_is_better=True, needs_reference=False,
    sample_rates=(16000,), min_duration=1.0, package="speechmos",
    outputs=("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
    description="DNSMOS P.835 (signal, background, overall) and P.808 MOS, non-intrusive, 16 kHz; 1-5",
    requires=("speechmos", "onnxruntime", "librosa", "requests"), install=INSTALL,
    needs_alignment=False,
))
def dnsmos(ref: None, deg: np.ndarray, sample_rate: int) -> dict[str, float]:
    from speechmos import dnsmos as speechmos_dnsmos

    # speechmos rejects samples outside [-1, 1]; clip as a 16-bit file would. Clips shorter
    # than the model's 9 s window are tiled by speechmos, as in Microsoft's reference script.
    scores = speechmos_dnsmos.run(np.clip(deg, -1.0, 1.0), sample_rate)
    return {
        "dnsmos_sig": scores["sig_mos"],
        "dnsmos_bak": scores["bak_mos"],
        "dnsmos_ovrl": scores["ovrl_mos"],
        "dnsmos_p808": scores["p808_mos"],
    }
