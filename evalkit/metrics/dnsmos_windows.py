"""DNSMOS P.835 over speechmos's overlapping 9 s windows, with the shared convolutions computed once.

speechmos scores a clip by running the P.835 network on 9.01 s windows one second apart and
averaging. The network is a stack of 3x3 convolutions and 2x2 max-pools over the log spectrogram,
then a global max and three dense layers. Two windows one second (100 frames) apart see the same
spectrogram frames where they overlap, so their feature maps agree there, except next to each
window's own edges, where its zero padding reaches in (3 positions of the map read here; EDGE
keeps a margin). So the map is computed once over the audio the windows cover (in chunks, to
bound memory), each window's edge positions are computed from a short segment starting or ending
at that edge, and only the global max and the dense layers run per window. The windows, their
tiling of short clips and speechmos's own rounding of window bounds (which drops some windows
of long clips) are kept exactly, so the scores are speechmos's to float rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HOP = 160  # samples per spectrogram frame (the model frames 320 samples every 160)
WINDOW_FRAMES = 900  # one 9.01 s window: 144160 samples
STRIDE = 4  # frames per position of the shared map (two 2x2 max-pools)
EDGE = 3  # map positions next to a window edge taken from the edge segment (as far as zero padding reaches)
EDGE_FRAMES = 2 * EDGE * STRIDE  # an edge segment: EDGE exact positions, then EDGE its own far edge spoils
CHUNK_FRAMES = 800  # shared map computed 8 s at a time (the first convolution's output is 128 x 161 floats per frame)
BATCH = 16  # windows per call of the edge and head sessions
SHARED = "mos_estimator_logpow/conv2d_5/Relu:0"  # last map before the final pool, convolution, global max
INPUT_LENGTH = 9.01  # speechmos's window, in seconds
P808_FFT, P808_MELS, P808_FRAMES = 321, 120, 900  # speechmos's P.808 log-mel input per window
EDGE_SAMPLES = 4 * HOP  # a P.808 edge segment: four mel frames, the outer one padded as in the window


def split_model(path: Path, make_session) -> tuple:
    """The P.835 model as two sessions: audio of any length -> shared map, and map -> raw scores."""
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
    trunk = extractor.extract_model(["input_1"], [SHARED])
    head = extractor.extract_model([SHARED], [model.graph.output[0].name])
    return make_session(trunk.SerializeToString()), make_session(head.SerializeToString())


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


def raw_scores(trunk, head, audio: np.ndarray, starts: list[int]) -> np.ndarray:
    """The P.835 network's raw (signal, background, overall) outputs for the windows at `starts`."""
    audio = audio.astype(np.float32)
    shared = _shared_map(trunk, audio, max(starts) + WINDOW_FRAMES, starts)
    scores = []
    for i in range(0, len(starts), BATCH):  # a batch at a time: a window's map is about 1 MB
        batch = starts[i : i + BATCH]
        left = _maps(trunk, audio, batch)
        right = _maps(trunk, audio, [s + WINDOW_FRAMES - EDGE_FRAMES for s in batch])
        maps = np.stack([shared[:, s // STRIDE : (s + WINDOW_FRAMES) // STRIDE] for s in batch])
        maps[:, :, :EDGE], maps[:, :, -EDGE:] = left[:, :, :EDGE], right[:, :, -EDGE:]
        scores.append(_run(head, maps))
    return np.concatenate(scores)


def _shared_map(trunk, audio: np.ndarray, n_frames: int, starts: list[int]) -> np.ndarray:
    """The map over frames [0, n_frames), in chunks that overlap by the reach of their own edges;
    chunks no window covers (speechmos drops some windows of long clips) are left at zero."""
    margin = EDGE * STRIDE
    parts = []
    for first in range(0, n_frames, CHUNK_FRAMES):
        last = min(first + CHUNK_FRAMES, n_frames)
        lo, hi = max(0, first - margin), min(n_frames, last + margin)
        if any(s < last and first < s + WINDOW_FRAMES for s in starts):
            part = _run(trunk, _frames(audio, lo, hi - lo)[np.newaxis])[0]
            parts.append(part[:, (first - lo) // STRIDE : (last - lo) // STRIDE])
        else:
            parts.append(np.zeros((parts[-1].shape[0], (last - first) // STRIDE, parts[-1].shape[2]), np.float32))
    return np.concatenate(parts, axis=1)


def _maps(trunk, audio: np.ndarray, firsts: list[int]) -> np.ndarray:
    """Maps [len(firsts), C, T, F] of the EDGE_FRAMES-long segments starting at each of `firsts`."""
    return _run(trunk, np.stack([_frames(audio, f, EDGE_FRAMES) for f in firsts]))


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
