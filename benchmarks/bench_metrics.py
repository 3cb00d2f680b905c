"""Speed of the slow metrics on one thread: DNSMOS, MCD (and MCD with DTW), as real-time factors.

Each is timed (CPU seconds, median of REPEATS) on a 3 s and a 30 s clip of real speech, beside
baselines measured in the same run: speechmos's own DNSMOS entry point with the model loaded in
that call (what every call cost before the model was kept per process), speechmos's DNSMOS
scorer with the model kept but its 9 s windows run one by one (what evalkit did before the
convolutions were shared between windows), and the per-frame iterative SPTK mel-cepstrum
(pysptk.mcep) that MCD used before. Real-time factor = audio seconds per CPU second; the
targets are 20x for DNSMOS and MCD. Short clips are tiled to a 9 s window and scored over three
overlapping windows, as in the reference, so a 3 s clip costs the network 11 s of audio (a clip
that is a whole number of 10 ms frames repeats its first convolutions with the tiling, so only
one period of them is computed: the 3 s row; the "3 s + 7 samples" row shows other lengths).
"""

from __future__ import annotations

import functools
import statistics
import time

import numpy as np

from evalkit.audio import Audio, resample
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.metrics import evaluate
from evalkit.metrics.distortion import MCD_FRAME, MCD_HOP, MCD_ORDER
from evalkit.text_tables import format_table

REPEATS = 3
LONG_SECONDS = 60
TARGET = 20.0


def main() -> None:
    speech = np.concatenate([resample(i.load(), 16000).samples[0] for i in load_dataset(DEMO_MANIFEST)])
    rows = []
    for seconds in (3, 30):
        clip = Audio(speech[: seconds * 16000], 16000)
        noisy = clip.with_samples(clip.samples + np.random.default_rng(0).normal(0, 0.01, clip.samples.shape))
        evaluate("dnsmos", None, clip)  # load the model once, as a worker does on its first item
        timings = {  # each lambda runs at once, inside this iteration
            "dnsmos (model kept per process)": _cpu(lambda: evaluate("dnsmos", None, clip)),  # noqa: B023
            "baseline: speechmos.dnsmos.run, model loaded per call": _cpu(lambda: _speechmos_cold(clip)),  # noqa: B023
            "baseline: speechmos DNSMOS, model kept, windows one by one": _cpu(lambda: _speechmos_kept(clip)),  # noqa: B023
            "mcd": _cpu(lambda: evaluate("mcd", clip, noisy)),  # noqa: B023
            "mcd_dtw": _cpu(lambda: evaluate("mcd_dtw", clip, noisy)),  # noqa: B023
            "baseline: per-frame pysptk.mcep MCD": _cpu(lambda: _mcep_mcd(clip, noisy)),  # noqa: B023
        }
        rows += _rows(seconds, timings)
    # A short clip whose length is not a whole number of 10 ms frames: its tiled front is not repeated.
    uneven = Audio(speech[: 3 * 16000 + 7], 16000)
    rows += _rows(
        3, {"dnsmos, 3 s + 7 samples (not whole 10 ms frames)": _cpu(lambda: evaluate("dnsmos", None, uneven))}
    )
    # A long clip, where nearly every second starts a window (DNSMOS only, once: the baseline takes ~15 s).
    clip = Audio(speech[: LONG_SECONDS * 16000], 16000)
    rows += _rows(
        LONG_SECONDS,
        {
            "dnsmos (model kept per process)": _cpu(lambda: evaluate("dnsmos", None, clip), 1),
            "baseline: speechmos DNSMOS, model kept, windows one by one": _cpu(lambda: _speechmos_kept(clip), 1),
        },
    )
    print(format_table(["clip", "metric", "cpu_s", "real_time", f"target {TARGET:g}x"], rows))


def _rows(seconds: int, timings: dict[str, float]) -> list[list[str]]:
    return [
        [
            f"{seconds} s",
            name,
            f"{cpu:.3f}",
            f"{seconds / cpu:.1f}x",
            "" if name.startswith("baseline") else ("PASS" if seconds / cpu >= TARGET else "FAIL"),
        ]
        for name, cpu in timings.items()
    ]


def _speechmos_cold(clip: Audio) -> None:
    from speechmos import dnsmos as speechmos_dnsmos

    speechmos_dnsmos.dnsmos = None  # its module-level model, rebuilt by the next call
    speechmos_dnsmos.run(np.clip(clip.samples[0].astype(np.float64), -1, 1), 16000)


def _speechmos_kept(clip: Audio) -> None:
    from speechmos.dnsmos import DNSMOS

    from evalkit.metrics import nonintrusive

    model = DNSMOS.__new__(DNSMOS)
    model.onnx_sess = _kept_session(nonintrusive._models() / "dnsmos_models" / "sig_bak_ovr.onnx")
    model.p808_onnx_sess = _kept_session(nonintrusive._models() / "dnsmos_models" / "model_v8.onnx")
    model(np.clip(clip.samples[0].astype(np.float64), -1, 1), 16000, False)


@functools.cache
def _kept_session(path):
    from evalkit.metrics import nonintrusive

    return nonintrusive._session(path)


def _mcep_mcd(ref: Audio, deg: Audio) -> float:
    import pysptk

    def mcep(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(x, MCD_FRAME)[::MCD_HOP] * np.blackman(MCD_FRAME)
        return pysptk.mcep(frames, order=MCD_ORDER, alpha=pysptk.util.mcepalpha(16000), etype=1, eps=1e-8)

    diff = mcep(ref.samples[0].astype(np.float64))[:, 1:] - mcep(deg.samples[0].astype(np.float64))[:, 1:]
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum(diff**2, axis=1))))


def _cpu(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
