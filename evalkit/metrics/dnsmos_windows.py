"""DNSMOS P.835 over speechmos's overlapping 9 s windows, with the shared convolutions computed once.

speechmos scores a clip by running the P.835 network on 9.01 s windows one second apart and
averaging. The network is a stack of 3x3 convolutions and 2x2 max-pools over the log spectrogram,
then a global max and three dense layers. Two windows one second (100 frames) apart see the same
spectrogram frames where they overlap, so their feature maps agree there, except next to each
window's own edges, where its zero padding reaches in (EDGE positions of the map read here). So
the map is computed once over the audio the windows cover (in chunks, to bound memory), and only
the global max and the dense layers run per window. A window's edge positions are recomputed
from EDGE_FRAMES frames at that edge; of those, the costly full-resolution convolutions (the
`front`, nine tenths of the work) differ from the shared ones only in their FRONT_EDGE frames
next to the edge, so only those come from a short segment at the edge, the rest from the shared
computation. A short clip is tiled (repeated) up to a window; when it is a whole number of
frames long, the front repeats with it and is computed over one period only. The windows,
their tiling of short clips and speechmos's own rounding of window
bounds (which drops some windows of long clips) are kept exactly, so the scores are speechmos's
to float rounding. The P.808 network's input is scaled by each window's own loudest bin, so
only its mel spectrogram is shared between windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

HOP = 160  # samples per spectrogram frame (the model frames 320 samples every 160)
WINDOW_FRAMES = 900  # one 9.01 s window: 144160 samples
STRIDE = 4  # frames per position of the shared map (two 2x2 max-pools)
EDGE = 3  # map positions next to a window edge taken from the edge segment (as far as zero padding reaches)
EDGE_FRAMES = 2 * EDGE * STRIDE  # an edge segment: EDGE exact positions, then EDGE its own far edge spoils
FRONT_EDGE = 4  # frames next to a window edge where the full-resolution convolutions see its zero padding
CHUNK_FRAMES = 800  # shared map computed 8 s at a time (a whole number of seconds: no edge crosses a chunk)
BATCH = 16  # windows per call of the edge and head sessions
SHARED = "mos_estimator_logpow/conv2d_5/Relu:0"  # last map before the final pool, convolution, global max
FRONT = "mos_estimator_logpow/conv2d_3/Relu:0"  # last full-resolution map, before the first pool
INPUT_LENGTH = 9.01  # speechmos's window, in seconds
P808_FFT, P808_MELS, P808_FRAMES = 321, 120, 900  # speechmos's P.808 log-mel input per window
EDGE_SAMPLES = 4 * HOP  # a P.808 edge segment: four mel frames, the outer one padded as in the window


@dataclass(frozen=True)
class Trunk:
    """The P.835 network up to the shared map, in two sessions: audio of any length -> last
    full-resolution map (`front`), and that -> the shared map (`back`)."""

    front: object
    back: object


def split_model(path: Path, make_session) -> tuple[Trunk, object]:
    """The P.835 model as its trunk (audio of any length -> shared map) and head (map -> raw scores)."""
    import onnx
    from onnx import numpy_helper
    from onnx.utils import Extractor

    model = onnx.load(str(path))
    constants = {i.name: i for i in model.graph.initializer}
    for name in ("shape_tensor", "shape_tensor1"):  # framing reshape [-1, 900, 160] -> [batch kept, -1, 160]
        constants[name].CopyFrom(numpy_helper.from_array(np.array([0, -1, HOP], np.int64), name))
    end = "input_1:01_cropping_end"  # first framing slice ends 160 samples before the input's end
    constants[end].CopyFrom(numpy_helper.from_array(np.array([np.iinfo(np.int64).max, -HOP], np.int64), end))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "samples"
    model.graph.ClearField("value_info")
    model = onnx.shape_inference.infer_shapes(model)
    extractor = Extractor(model)
    front = extractor.extract_model(["input_1"], [FRONT])
    back = extractor.extract_model([FRONT], [SHARED])
    head = extractor.extract_model([SHARED], [model.graph.output[0].name])
    trunk = Trunk(make_session(front.SerializeToString()), make_session(back.SerializeToString()))
    return trunk, make_session(head.SerializeToString())


def tiled(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """speechmos's tiling of a clip shorter than one window: the clip doubled until it is long enough."""
    while len(audio) < int(INPUT_LENGTH * sample_rate):
        audio = np.append(audio, audio)
    return audio


def window_starts(n_samples: int, sample_rate: int) -> list[int]:
    """Start frame of each window speechmos scores: one per second, less those its rounding cuts short."""
    hops = int(np.floor(n_samples / sample_rate) - INPUT_LENGTH) + 1
    starts = []
    for idx in range(hops):
        first, last = int(idx * sample_rate), int((idx + INPUT_LENGTH) * sample_rate)
        if last - first == WINDOW_FRAMES * HOP + HOP:
            starts.append(first // HOP)
    return starts


def window_audio(audio: np.ndarray, start: int) -> np.ndarray:
    """The samples of the window starting at frame `start`."""
    return _frames(audio, start, WINDOW_FRAMES)


def raw_scores(trunk: Trunk, head, audio: np.ndarray, starts: list[int], period: int | None = None) -> np.ndarray:
    """The P.835 network's raw (signal, background, overall) outputs for the windows at `starts`;
    `period`: the audio repeats every `period` samples (a tiled clip's length), None if not."""
    audio = audio.astype(np.float32)
    edges = {s: None for s in starts} | {s + WINDOW_FRAMES - EDGE_FRAMES: None for s in starts}
    shared = _shared_map(trunk, audio, max(starts) + WINDOW_FRAMES, starts, edges, period)
    scores = []
    for i in range(0, len(starts), BATCH):  # a batch at a time: a window's map is about 1 MB
        batch = starts[i : i + BATCH]
        left = _edge_maps(trunk, audio, batch, edges, left=True)
        right = _edge_maps(trunk, audio, [s + WINDOW_FRAMES - EDGE_FRAMES for s in batch], edges, left=False)
        maps = np.stack([shared[:, s // STRIDE : (s + WINDOW_FRAMES) // STRIDE] for s in batch])
        maps[:, :, :EDGE], maps[:, :, -EDGE:] = left[:, :, :EDGE], right[:, :, -EDGE:]
        scores.append(_run(head, maps))
    return np.concatenate(scores)


def _shared_map(
    trunk: Trunk, audio: np.ndarray, n_frames: int, starts: list[int], edges: dict, period: int | None
) -> np.ndarray:
    """The map over frames [0, n_frames), in chunks that overlap by the reach of their own edges;
    chunks no window covers (speechmos drops some windows of long clips) are left at zero. Fills
    `edges` (first frame of an edge segment -> the front's shared output over its EDGE_FRAMES)."""
    margin = EDGE * STRIDE
    repeated = _periodic_front(trunk, audio, n_frames, period)
    parts = []
    for first in range(0, n_frames, CHUNK_FRAMES):
        last = min(first + CHUNK_FRAMES, n_frames)
        lo, hi = max(0, first - margin), min(n_frames, last + margin)
        if any(s < last and first < s + WINDOW_FRAMES for s in starts):
            front = _run(trunk.front, _frames(audio, lo, hi - lo)[np.newaxis]) if repeated is None else repeated(lo, hi)
            for edge in edges:
                if first <= edge and edge + EDGE_FRAMES <= last:
                    edges[edge] = front[0, :, edge - lo : edge - lo + EDGE_FRAMES]
            part = _run(trunk.back, front)[0]
            parts.append(part[:, (first - lo) // STRIDE : (last - lo) // STRIDE])
        else:
            parts.append(np.zeros((parts[-1].shape[0], (last - first) // STRIDE, parts[-1].shape[2]), np.float32))
    return np.concatenate(parts, axis=1)


def _periodic_front(trunk: Trunk, audio: np.ndarray, n_frames: int, period: int | None):
    """For audio repeating every `period` samples, a whole number of frames: a function (lo, hi) ->
    the front over frames [lo, hi), computed once over the first FRONT_EDGE frames (the audio's
    own start) and one period after them; None when the audio does not repeat that way."""
    if period is None or period % HOP or period // HOP + 2 * FRONT_EDGE >= n_frames:
        return None
    frames = period // HOP
    once = _run(trunk.front, _frames(audio, 0, frames + 2 * FRONT_EDGE)[np.newaxis])  # exact up to frames + FRONT_EDGE

    def front(lo: int, hi: int) -> np.ndarray:
        index = np.arange(lo, hi)
        return once[:, :, np.where(index < FRONT_EDGE, index, (index - FRONT_EDGE) % frames + FRONT_EDGE)]

    return front


def _edge_maps(trunk: Trunk, audio: np.ndarray, firsts: list[int], edges: dict, left: bool) -> np.ndarray:
    """Maps [len(firsts), C, T, F] of the EDGE_FRAMES-long segments starting at each of `firsts`,
    as a window that starts (`left`) or ends there sees them: the front's output is the shared
    one except the FRONT_EDGE frames next to that edge, which come from a short segment there."""
    if left:
        near = _run(trunk.front, np.stack([_frames(audio, f, 2 * FRONT_EDGE) for f in firsts]))[:, :, :FRONT_EDGE]
    else:
        ends = [f + EDGE_FRAMES - 2 * FRONT_EDGE for f in firsts]
        near = _run(trunk.front, np.stack([_frames(audio, f, 2 * FRONT_EDGE) for f in ends]))[:, :, -FRONT_EDGE:]
    if any(edges[f] is None for f in firsts):  # window starts are whole seconds, chunks whole seconds too
        raise ValueError("DNSMOS: a window edge crosses a chunk of the shared map")
    front = np.stack([edges[f] for f in firsts])
    if left:
        front[:, :, :FRONT_EDGE] = near
    else:
        front[:, :, -FRONT_EDGE:] = near
    return _run(trunk.back, front)


def _frames(audio: np.ndarray, first: int, count: int) -> np.ndarray:
    """The samples behind `count` frames from frame `first` (each frame 320 samples, 160 apart)."""
    return audio[first * HOP : (first + count + 1) * HOP]


def _run(session, inputs: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def p808_features(audio: np.ndarray, starts: list[int]) -> np.ndarray:
    """speechmos's P.808 input (windows, P808_FRAMES, P808_MELS) for the windows at `starts`, from
    one mel spectrogram of the audio they cover. A window's mel frames are the audio's, except its
    first and last, which reach into the window's own zero padding and come from short segments
    at its two ends; each window is then put in dB against its own loudest bin, as speechmos does."""
    import librosa

    length = P808_FRAMES * HOP  # a window's P.808 audio: its samples less the last HOP
    power = _mel_power(audio[: max(starts) * HOP + length])
    firsts = np.stack([audio[s * HOP : s * HOP + EDGE_SAMPLES] for s in starts])
    lasts = np.stack([audio[s * HOP + length - EDGE_SAMPLES : s * HOP + length] for s in starts])
    first, last = _mel_power(firsts)[..., 0], _mel_power(lasts)[..., -1]
    features = []
    for i, s in enumerate(starts):
        mel = np.concatenate([first[i][:, None], power[:, s + 1 : s + P808_FRAMES - 1], last[i][:, None]], axis=1)
        features.append(((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T)
    return np.asarray(features, dtype=np.float32)


def _mel_power(audio: np.ndarray) -> np.ndarray:
    """speechmos's mel power spectrogram (before dB), centred frames HOP apart; any leading axes kept."""
    import librosa

    return librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=P808_FFT, hop_length=HOP, n_mels=P808_MELS)
