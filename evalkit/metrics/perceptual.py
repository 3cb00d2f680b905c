"""Intrusive perceptual quality: PESQ (ITU-T P.862 / P.862.2) and ViSQOL v3 (speech and audio)."""

from __future__ import annotations

from functools import cache

import numpy as np

from ..errors import MetricError
from .base import MetricSpec, metric

__all__ = ["pesq_nb", "pesq_wb", "visqol_speech", "visqol_audio"]

PESQ_INSTALL = "pip install pesq==0.0.4  (builds C code: needs gcc)"
VISQOL_INSTALL = 'pip install "visqol-python[accel,lattice]==3.8.0"'


# PESQ's C code keeps at most 50 utterances in fixed arrays and writes past them (the process
# dies of a segmentation fault: 60 short phrases, or 4 min of speech with pauses). Its voice
# activity detection is mirrored below on 4 ms frames; it counts a little more than PESQ does.
PESQ_MAX_UTTERANCES = 50
_PESQ_FRAMES_PER_SECOND = 250
_PESQ_MIN_SPEECH, _PESQ_JOIN, _PESQ_MIN_UTTERANCE = 4, 50, 50  # frames: MINSPEECHLGTH, JOINSPEECHLGTH, MINUTTLENGTH


def _pesq(ref: np.ndarray, deg: np.ndarray, rate: int, mode: str) -> float:
    from pesq import PesqError, pesq

    if (count := _utterances(ref, rate)) > PESQ_MAX_UTTERANCES:
        raise MetricError(
            f"PESQ: the reference holds about {count} separate utterances, more than the {PESQ_MAX_UTTERANCES} "
            "PESQ's C code can hold (beyond, it crashes); cut the item into shorter ones"
        )
    try:
        return pesq(rate, ref, deg, mode)
    except PesqError as err:  # e.g. NoUtterancesError: the C code found no speech in the reference
        message = err.args[0] if err.args else type(err).__name__
        message = message.decode() if isinstance(message, bytes) else str(message)
        raise MetricError(f"PESQ: {message}") from None


def _utterances(x: np.ndarray, rate: int) -> int:
    """About how many utterances PESQ's voice activity detection finds: frame powers against an
    adaptive noise threshold (12 rounds of mean + 2 deviations of the frames below it), speech
    runs over 4 frames, gaps up to 50 frames joined, utterances of 50 frames and more."""
    hop = rate // _PESQ_FRAMES_PER_SECOND
    frames = len(x) // hop
    if frames == 0:
        return 0
    power = np.mean(np.square(x[: frames * hop]).reshape(frames, hop), axis=1)
    power = np.maximum(power, power.max() * 1e-4 if power.max() > 0 else 1.0)
    threshold = power.mean()
    for _ in range(12):
        noise = power[power <= threshold]
        threshold = 1.001 * (noise.mean() + 2 * noise.std()) if noise.size else threshold
    edges = np.diff(np.concatenate([[0], (power > threshold).astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    keep = ends - starts > _PESQ_MIN_SPEECH
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return 0
    new = np.concatenate([[True], starts[1:] - ends[:-1] > _PESQ_JOIN])  # a run that is not joined to the last
    last = np.concatenate([new[1:], [True]])  # a run that ends its utterance
    return int(np.sum(ends[last] - starts[new] >= _PESQ_MIN_UTTERANCE))


@metric(
    MetricSpec(
        name="pesq_nb",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=(8000,),
        min_duration=1.0,
        package="pesq",
        outputs=("pesq_nb",),
        description="PESQ narrow-band (ITU-T P.862 with the P.862.1 MOS-LQO mapping) at 8 kHz; 1.0-4.55",
        requires=("pesq",),
        install=PESQ_INSTALL,
    )
)
def pesq_nb(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    return _pesq(ref, deg, sample_rate, "nb")


@metric(
    MetricSpec(
        name="pesq_wb",
        version="1",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=(16000,),
        min_duration=1.0,
        package="pesq",
        outputs=("pesq_wb",),
        description="PESQ wide-band (ITU-T P.862.2) at 16 kHz; MOS-LQO 1.04-4.64",
        requires=("pesq",),
        install=PESQ_INSTALL,
    )
)
def pesq_wb(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    return _pesq(ref, deg, sample_rate, "wb")


@cache
def _visqol(mode: str):
    """One ViSQOL instance per mode and process (creating one loads the mapping model)."""
    from visqol import VisqolApi

    api = VisqolApi()
    if mode == "speech":
        # Force the deep-lattice mapper (the C++ default): the silent polynomial fallback
        # over-predicts by 1-2 MOS, so a missing runtime must fail instead of changing scores.
        api.create(mode="speech", use_lattice_model=True)
        _use_vectorised_vad(api)
    else:
        api.create(mode="audio")  # bundled libsvm nu-SVR model
    return api


def _use_vectorised_vad(api) -> None:
    """Swap this instance's speech-mode patch creator for one that converts the voice-activity
    input with numpy: the same int16 frames and decisions as visqol-python's per-sample Python
    loop (a test checks), which took about a quarter of each ViSQOL speech call. Only the
    exact class this was checked against is swapped; anything else is left alone."""
    from visqol.patch_creator import RmsVad, VadPatchCreator

    class VectorisedVadPatchCreator(VadPatchCreator):
        def _get_voice_activity(self, signal, start_sample, total_samples, frame_len):
            data = np.asarray(signal.data[start_sample : start_sample + total_samples], dtype=np.float64)
            # As upstream: scale to 16 bits, clamp, truncate toward zero; whole frames only.
            pcm = np.clip(data * (1 << 15), -(1 << 15), (1 << 15) - 1).astype(np.int16)
            vad = RmsVad()
            for frame in pcm[: len(pcm) // frame_len * frame_len].reshape(-1, frame_len):
                vad.process_chunk(frame)
            return vad.get_vad_results()

    manager = getattr(api, "_manager", None)
    if type(getattr(manager, "patch_creator", None)) is VadPatchCreator:
        manager.patch_creator = VectorisedVadPatchCreator(manager.patch_creator.patch_size)


@metric(
    MetricSpec(
        name="visqol_speech",
        version="1+lattice",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=(16000,),
        min_duration=1.0,
        package="visqol-python",
        outputs=("visqol_speech",),
        description="ViSQOL v3 speech mode at 16 kHz, deep-lattice MOS mapping (C++ default); MOS-LQO 1-5",
        requires=("visqol", "ai_edge_litert"),
        install=VISQOL_INSTALL,
        bandwidth_hz=(0.0, 10_000.0),  # it hears up to 8 kHz: fullband content wants visqol_audio
    )
)
def visqol_speech(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    return _visqol("speech").measure_from_arrays(ref, deg, sample_rate).moslqo


@metric(
    MetricSpec(
        name="visqol_audio",
        version="1+svr",
        higher_is_better=True,
        needs_reference=True,
        sample_rates=(48000,),
        min_duration=1.0,
        package="visqol-python",
        outputs=("visqol_audio",),
        description="ViSQOL v3 audio mode at 48 kHz, bundled nu-SVR MOS mapping; MOS-LQO 1-5",
        requires=("visqol",),
        install=VISQOL_INSTALL,
        bandwidth_hz=(10_000.0, 24_000.0),  # band-limited (e.g. 16 kHz) content wants visqol_speech
    )
)
def visqol_audio(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> float:
    return _visqol("audio").measure_from_arrays(ref, deg, sample_rate).moslqo
