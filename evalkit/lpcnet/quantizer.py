"""The 1.6 kbit/s LPCNet quantizer: 64 bits per 40 ms packet of four 10 ms frames.

Frames 1-4 of a packet are the packet's frames in order; frame 0 is the previous packet's
frame 4 as the decoder reconstructed it (for the first packet: this packet's frame 4).
The fields, most significant bit first:

    period       6  mean log2 pitch period over the packet, uniform from 32 to 256 samples
    modulation   3  the period's slope over the four frames (trained levels, log2 per frame)
    correlation  2  the packet's mean pitch correlation (trained levels)
    energy       7  c0 of frame 4, uniform over the training range
    vq1-vq3     30  c1..c17 of frame 4: three-stage VQ of 10 bits each (M-best search)
    weight       2  frame 2 predicted as w * frame 0 + (1 - w) * frame 4, w in {0, 1/3, 2/3, 1}
    delta       11  the prediction residual of frame 2 (all 18 cepstra): 2048-entry VQ
    interp       3  frames 1 and 3 interpolated between frames 0, 2 and 4 with one of 8 trained
                    (w1, w3) weight pairs: frame 1 = w1 f0 + (1 - w1) f2, frame 3 = w3 f2 + (1 - w3) f4

64 bits, so the rate is exactly 1600 bit/s. The codebooks are trained by k-means on the
training set's features (`train_codebooks`) and travel with the codec's weights.

The encoder searches the whole packet (analysis by synthesis): frames 1-3 are built from frame
4, so frame 4 is not chosen on its own. Every frame-4 candidate (the M-best VQ paths at the
nearest energy level and one level either side) is completed with its best frame-2 weight,
delta and interpolation pair, and scored on all four decoded frames plus, as frame 4 is also
the next packet's frame 0, the best error the next packet's frames 1-3 could reach from it
(LOOKAHEAD_WEIGHT). The error is a squared cepstral distance with CEPSTRAL_WEIGHTS. The decoder
is the same for this encoder and the former greedy one (`greedy_packet`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CodecError
from .features import NB_BANDS
from .kmeans import kmeans, nearest
from .pitch import MAX_PERIOD, MIN_PERIOD

__all__ = [
    "ENCODER_VERSION",
    "PACKET_FRAMES",
    "PACKET_BYTES",
    "FIELDS",
    "Codebooks",
    "PacketQuantizer",
    "pack_fields",
    "unpack_fields",
    "train_codebooks",
]

PACKET_FRAMES = 4
ENCODER_VERSION = "abs1"  # the packet search (analysis by synthesis over the four frames)
FIELDS = (
    ("period", 6),
    ("modulation", 3),
    ("correlation", 2),
    ("energy", 7),
    ("vq1", 10),
    ("vq2", 10),
    ("vq3", 10),
    ("weight", 2),
    ("delta", 11),
    ("interp", 3),
)
PACKET_BITS = sum(width for _, width in FIELDS)
PACKET_BYTES = PACKET_BITS // 8
PREDICTION_WEIGHTS = np.array([0.0, 1 / 3, 2 / 3, 1.0])
LOG_PERIOD_RANGE = (np.log2(MIN_PERIOD), np.log2(MAX_PERIOD))
MBEST = 8  # candidates kept per VQ stage
ENERGY_STEPS = (0, -1, 1)  # frame-4 energy levels tried around the nearest one
DELTA_BEST = 4  # frame-2 deltas kept per prediction weight in the packet search
# The search's error: c7-c17 count twice (the codebooks were trained on plain Euclidean distance;
# the fine spectral detail the interpolated frames lose weighs more in ViSQOL and WARP-Q).
CEPSTRAL_WEIGHTS = np.r_[np.ones(7), np.full(NB_BANDS - 7, 2.0)]
LOOKAHEAD_WEIGHT = 1.0  # the next packet's frames 1-3 count as much as this packet's


def pack_fields(values: dict[str, int], fields=FIELDS) -> bytes:
    """Integer fields, MSB first, into whole bytes (the widths must sum to a multiple of 8)."""
    word, total = 0, 0
    for name, width in fields:
        value = int(values[name])
        if not 0 <= value < 1 << width:
            raise CodecError(f"field {name}={value} does not fit in {width} bits")
        word, total = (word << width) | value, total + width
    if total % 8:
        raise CodecError(f"fields of {total} bits do not fill whole bytes")
    return word.to_bytes(total // 8, "big")


def unpack_fields(data: bytes, fields=FIELDS) -> dict[str, int]:
    """The inverse of pack_fields; CodecError unless `data` has exactly the fields' bytes."""
    total = sum(width for _, width in fields)
    if len(data) * 8 != total:
        raise CodecError(f"packet has {len(data)} bytes; expected {total // 8}")
    word, values = int.from_bytes(data, "big"), {}
    for name, width in reversed(fields):
        values[name] = word & ((1 << width) - 1)
        word >>= width
    return values


@dataclass(frozen=True)
class Codebooks:
    """Everything the quantizer learned from data."""

    energy_range: np.ndarray  # (2,) c0 of level 0 and level 127
    modulation: np.ndarray  # (8,) log2-period slopes per frame
    correlation: np.ndarray  # (4,) pitch correlations
    stages: np.ndarray  # (3, 1024, 17) c1..c17 of frame 4
    delta: np.ndarray  # (2048, 18) residuals of frame 2
    interp: np.ndarray  # (8, 2) (w1, w3)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"quantizer.{name}": np.asarray(getattr(self, name), np.float32) for name in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays) -> Codebooks:
        books = cls(**{name: np.asarray(arrays[f"quantizer.{name}"], np.float64) for name in cls.__dataclass_fields__})
        expected = {
            "energy_range": (2,),
            "modulation": (8,),
            "correlation": (4,),
            "stages": (3, 1024, NB_BANDS - 1),
            "delta": (2048, NB_BANDS),
            "interp": (8, 2),
        }
        for name, shape in expected.items():
            if getattr(books, name).shape != shape:
                raise ValueError(f"quantizer {name} has shape {getattr(books, name).shape}, expected {shape}")
        return books

    def energy_levels(self) -> np.ndarray:
        return np.linspace(self.energy_range[0], self.energy_range[1], 128)


def _period_levels() -> np.ndarray:
    return np.linspace(*LOG_PERIOD_RANGE, 64)


class PacketQuantizer:
    """Encodes features (frames, 20) to 8-byte packets and back, holding the decoder's frame-0 state."""

    def __init__(self, books: Codebooks, weights=CEPSTRAL_WEIGHTS, lookahead: float = LOOKAHEAD_WEIGHT):
        self.books = books
        self._stage_norms = [np.einsum("kd,kd->k", book, book) for book in books.stages]
        self.weights = np.asarray(weights, np.float64)
        self.lookahead = lookahead
        self._delta_norms = np.einsum("kd,kd->k", books.delta * self.weights, books.delta)

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, feats: np.ndarray) -> list[bytes]:
        """Packets for features whose frame count is a multiple of 4."""
        feats = np.asarray(feats, np.float64)
        if len(feats) % PACKET_FRAMES:
            raise CodecError(f"{len(feats)} frames do not fill whole packets of {PACKET_FRAMES}")
        packets, previous = [], None
        for start in range(0, len(feats), PACKET_FRAMES):
            upcoming = feats[start + PACKET_FRAMES : start + 2 * PACKET_FRAMES]
            values, previous = self.encode_packet(feats[start : start + PACKET_FRAMES], previous, upcoming)
            packets.append(pack_fields(values))
        return packets

    def encode_packet(
        self, frames: np.ndarray, previous: np.ndarray | None, upcoming: np.ndarray | None = None
    ) -> tuple[dict, np.ndarray]:
        """(field values, frame 4's reconstructed cepstrum) for one packet's 4 feature frames.

        Analysis by synthesis over the packet: every frame-4 candidate (the M-best VQ paths at
        the nearest energy level and its neighbours) is completed with its best frame-2 weight,
        delta and interpolation, and the candidate whose four decoded frames are nearest the
        input wins. The old frame-4-first choice is one of the candidates, so the packet error
        never grows."""
        values = self._pitch_fields(frames[:, NB_BANDS], frames[:, NB_BANDS + 1])
        ceps = frames[:, :NB_BANDS]
        energies, paths, lasts = self._frame4_candidates(ceps[3])
        firsts = lasts if previous is None else np.broadcast_to(previous, lasts.shape)
        choice, err = self._complete(ceps, firsts, lasts)
        err = err + self._distance(ceps[3], lasts)
        if self.lookahead and upcoming is not None and len(upcoming) == PACKET_FRAMES:
            err = err + self.lookahead * self._upcoming_error(upcoming[:, :NB_BANDS], lasts)
        best = int(np.argmin(err))
        weight, delta, interp = (int(c[best]) for c in choice)
        values.update(energy=int(energies[best]), vq1=int(paths[best, 0]), vq2=int(paths[best, 1]))
        values.update(vq3=int(paths[best, 2]), weight=weight, delta=delta, interp=interp)
        return values, lasts[best]

    def greedy_packet(self, frames: np.ndarray, previous: np.ndarray | None) -> tuple[dict, np.ndarray]:
        """The former encoder, each field chosen in turn on its own frame (frame 4, then frame 2,
        then the interpolation): the reference the packet search must never do worse than."""
        values = self._pitch_fields(frames[:, NB_BANDS], frames[:, NB_BANDS + 1])
        ceps = frames[:, :NB_BANDS]
        energy = int(np.argmin(np.abs(self.books.energy_levels() - ceps[3, 0])))
        stages = self._msvq(ceps[3, 1:])
        values.update(energy=energy, vq1=stages[0], vq2=stages[1], vq3=stages[2])
        last = self._frame4(energy, stages)
        first = last if previous is None else previous
        weight, delta, middle = self._frame2(ceps[1], first, last)
        values.update(weight=weight, delta=delta, interp=self._interp_choice(ceps[0], ceps[2], first, middle, last))
        return values, last

    def _distance(self, target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Weighted squared cepstral distance of each candidate (last axis) to the target."""
        return np.sum(self.weights * (target - candidates) ** 2, axis=-1)

    def _frame4_candidates(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(energy levels, VQ paths, reconstructed frame 4) of every candidate, the greedy choice first."""
        levels = self.books.energy_levels()
        nearest_level = int(np.argmin(np.abs(levels - target[0])))
        energies = np.array([e for e in nearest_level + np.array(ENERGY_STEPS) if 0 <= e < len(levels)])
        paths = self._msvq_paths(target[1:])
        rest = sum(book[paths[:, stage]] for stage, book in enumerate(self.books.stages))
        lasts = np.concatenate([np.repeat(levels[energies], len(paths))[:, None], np.tile(rest, (len(energies), 1))], 1)
        return np.repeat(energies, len(paths)), np.tile(paths, (len(energies), 1)), lasts

    def _complete(self, ceps: np.ndarray, firsts: np.ndarray, lasts: np.ndarray):
        """((weight, delta, interp) indices, error of frames 1-3) of each candidate's best completion.

        Frame 2 keeps the DELTA_BEST nearest deltas for every prediction weight; every one of
        them is tried with every interpolation pair."""
        w = PREDICTION_WEIGHTS[None, :, None]
        predictions = w * firsts[:, None, :] + (1 - w) * lasts[:, None, :]  # (C, 4, 18)
        residuals = ceps[1] - predictions
        book = self.books.delta
        dist = self._delta_norms - 2.0 * (residuals * self.weights) @ book.T  # + |residual|^2_w, the same per row
        top = _smallest(dist, DELTA_BEST)  # (C, 4, K)
        middles = predictions[:, :, None, :] + book[top]  # (C, 4, K, 18)
        w1 = self.books.interp[:, 0, None]
        w3 = self.books.interp[:, 1, None]
        frame1 = w1 * firsts[:, None, None, None, :] + (1 - w1) * middles[..., None, :]  # (C, 4, K, 8, 18)
        frame3 = w3 * middles[..., None, :] + (1 - w3) * lasts[:, None, None, None, :]
        err = self._distance(ceps[1], middles)[..., None] + self._distance(ceps[0], frame1)
        err += self._distance(ceps[2], frame3)
        flat = err.reshape(len(lasts), -1)
        best = np.argmin(flat, axis=1)
        weight, k, interp = np.unravel_index(best, err.shape[1:])
        delta = top[np.arange(len(lasts)), weight, k]
        return (weight, delta, interp), flat[np.arange(len(lasts)), best]

    def _upcoming_error(self, upcoming: np.ndarray, lasts: np.ndarray) -> np.ndarray:
        """Error of the next packet's frames 1-3 with each candidate as its frame 0 and its own
        greedy frame 4: frame 4 of this packet is predicted from and interpolated with there too."""
        _, _, next_lasts = self._frame4_candidates(upcoming[3])
        following = np.broadcast_to(next_lasts[0], lasts.shape)
        return self._complete(upcoming, lasts, following)[1]

    def _pitch_fields(self, period: np.ndarray, corr: np.ndarray) -> dict:
        logp = np.log2(np.clip(period, MIN_PERIOD, MAX_PERIOD))
        offsets = np.arange(PACKET_FRAMES) - (PACKET_FRAMES - 1) / 2
        weights = np.clip(corr, 0.0, 1.0) + 0.05  # the voiced frames' pitch matters most
        mean = np.sum(weights * logp) / np.sum(weights)
        slope = np.sum(weights * offsets * (logp - mean)) / np.sum(weights * offsets**2)
        return {
            "period": int(np.argmin(np.abs(_period_levels() - mean))),
            "modulation": int(np.argmin(np.abs(self.books.modulation - slope))),
            "correlation": int(np.argmin(np.abs(self.books.correlation - np.mean(corr)))),
        }

    def _msvq(self, target: np.ndarray) -> list[int]:
        """Three-stage VQ indices of the best path of the M-best search."""
        return [int(i) for i in self._msvq_paths(target)[0]]

    def _msvq_paths(self, target: np.ndarray) -> np.ndarray:
        """(MBEST, 3) stage indices of the M-best search's final paths, nearest first."""
        residuals, indices = target[None, :], np.zeros((1, 0), dtype=np.int64)
        for book, norms in zip(self.books.stages, self._stage_norms):
            dist = norms[None, :] - 2.0 * residuals @ book.T  # + |residual|^2, the same along each row
            dist += np.einsum("pd,pd->p", residuals, residuals)[:, None]
            flat = dist.ravel()
            best = np.argpartition(flat, MBEST)[:MBEST]
            best = best[np.argsort(flat[best], kind="stable")]
            path, index = np.divmod(best, book.shape[0])
            indices = np.concatenate([indices[path], index[:, None]], axis=1)
            residuals = residuals[path] - book[index]
        return indices

    def _frame2(self, target, first, last) -> tuple[int, int, np.ndarray]:
        best = None
        for w_index, w in enumerate(PREDICTION_WEIGHTS):
            prediction = w * first + (1 - w) * last
            index, dist = nearest((target - prediction)[None], self.books.delta)
            if best is None or dist[0] < best[0]:
                best = (dist[0], w_index, int(index[0]), prediction + self.books.delta[index[0]])
        return best[1], best[2], best[3]

    def _interp_choice(self, frame1, frame3, first, middle, last) -> int:
        w1, w3 = self.books.interp[:, :1], self.books.interp[:, 1:]
        err = np.sum((frame1 - (w1 * first + (1 - w1) * middle)) ** 2, axis=1)
        err += np.sum((frame3 - (w3 * middle + (1 - w3) * last)) ** 2, axis=1)
        return int(np.argmin(err))

    # -- decoder ---------------------------------------------------------------------------

    def decode(self, packets: list[bytes]) -> np.ndarray:
        """(4 x packets, 20) features; CodecError on a packet of the wrong size."""
        out, previous = [], None
        for packet in packets:
            frames, previous = self.decode_packet(unpack_fields(packet), previous)
            out.append(frames)
        return np.concatenate(out) if out else np.zeros((0, NB_BANDS + 2))

    def decode_packet(self, values: dict, previous: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        last = self._frame4(values["energy"], [values["vq1"], values["vq2"], values["vq3"]])
        first = last if previous is None else previous
        w = PREDICTION_WEIGHTS[values["weight"]]
        middle = w * first + (1 - w) * last + self.books.delta[values["delta"]]
        w1, w3 = self.books.interp[values["interp"]]
        ceps = np.stack([w1 * first + (1 - w1) * middle, middle, w3 * middle + (1 - w3) * last, last])
        offsets = np.arange(PACKET_FRAMES) - (PACKET_FRAMES - 1) / 2
        logp = _period_levels()[values["period"]] + self.books.modulation[values["modulation"]] * offsets
        period = np.clip(2.0**logp, MIN_PERIOD, MAX_PERIOD)
        corr = np.full(PACKET_FRAMES, self.books.correlation[values["correlation"]])
        return np.concatenate([ceps, period[:, None], corr[:, None]], axis=1), last

    def _frame4(self, energy: int, stages) -> np.ndarray:
        rest = sum(book[i] for book, i in zip(self.books.stages, stages))
        return np.concatenate([[self.books.energy_levels()[energy]], rest])


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` smallest entries along the last axis, in ascending order (a few
    argmins are many times faster than one argpartition when `count` is small)."""
    values = values.copy()
    rows = np.indices(values.shape[:-1])
    out = []
    for _ in range(count):
        index = np.argmin(values, axis=-1)
        out.append(index)
        values[(*rows, index)] = np.inf
    return np.stack(out, axis=-1)


# -- training ------------------------------------------------------------------------------


def train_codebooks(
    items: list[np.ndarray], seed: int = 0, max_vectors: int = 200_000, iterations: int = 20, log=print
) -> Codebooks:
    """k-means codebooks from the features (frames, 20) of training items (each cut to whole packets)."""
    packets = np.concatenate(
        [
            f[: len(f) - len(f) % PACKET_FRAMES].reshape(-1, PACKET_FRAMES, f.shape[1])
            for f in items
            if len(f) >= PACKET_FRAMES
        ]
    ).astype(np.float64)
    rng = np.random.default_rng(seed)
    sample = packets[rng.permutation(len(packets))[:max_vectors]]
    log(f"quantizer: {len(packets)} packets, training on {len(sample)}")
    c0 = packets[:, 3, 0]
    energy_range = np.percentile(c0, [0.5, 99.9])
    slopes, corr = _pitch_statistics(sample)
    modulation = np.sort(kmeans(slopes[corr > 0.5][:, None], 8, iterations, seed)[:, 0])
    correlation = np.sort(kmeans(corr[:, None], 4, iterations, seed)[:, 0])
    residual, stages = sample[:, 3, 1:NB_BANDS].copy(), []
    for stage in range(3):
        book = kmeans(residual, 1024, iterations, seed + stage)
        residual -= book[nearest(residual, book)[0]]
        stages.append(book)
        log(f"quantizer: frame-4 stage {stage + 1} done, residual power {np.mean(residual**2):.4f}")
    partial = Codebooks(
        energy_range, modulation, correlation, np.stack(stages), np.zeros((2048, NB_BANDS)), np.zeros((8, 2))
    )
    delta = kmeans(_frame2_residuals(partial, items, rng, max_vectors), 2048, iterations, seed + 3)
    partial = Codebooks(energy_range, modulation, correlation, np.stack(stages), delta, np.zeros((8, 2)))
    interp = np.clip(kmeans(_best_interp_weights(partial, items, rng, max_vectors), 8, iterations, seed + 4), 0, 1)
    log("quantizer: codebooks trained")
    return Codebooks(energy_range, modulation, correlation, np.stack(stages), delta, interp)


def _pitch_statistics(packets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weighted log2-period slope, mean correlation) per packet."""
    logp = np.log2(np.clip(packets[:, :, NB_BANDS], MIN_PERIOD, MAX_PERIOD))
    corr = np.clip(packets[:, :, NB_BANDS + 1], 0, 1)
    weights = corr + 0.05
    offsets = np.arange(PACKET_FRAMES) - (PACKET_FRAMES - 1) / 2
    mean = np.sum(weights * logp, 1, keepdims=True) / np.sum(weights, 1, keepdims=True)
    slope = np.sum(weights * offsets * (logp - mean), 1) / np.sum(weights * offsets**2, 1)
    return slope, corr.mean(axis=1)


def _walk(books: Codebooks, items, rng, max_vectors: int):
    """Yield (packet frames, reconstructed frame 0, reconstructed frame 4) in stream order for a
    random subset of items, the decoder's state carried as it would be."""
    quantizer = PacketQuantizer(books)
    budget = max_vectors
    for index in rng.permutation(len(items)):
        feats = np.asarray(items[index], np.float64)
        previous = None
        for start in range(0, len(feats) - PACKET_FRAMES + 1, PACKET_FRAMES):
            frames = feats[start : start + PACKET_FRAMES]
            energy = int(np.argmin(np.abs(books.energy_levels() - frames[3, 0])))
            last = quantizer._frame4(energy, quantizer._msvq(frames[3, 1:NB_BANDS]))
            first = last if previous is None else previous
            yield frames, first, last
            previous = last
            budget -= 1
        if budget <= 0:
            return


def _frame2_residuals(books, items, rng, max_vectors) -> np.ndarray:
    out = []
    for frames, first, last in _walk(books, items, rng, max_vectors // 4):
        target = frames[1, :NB_BANDS]
        predictions = PREDICTION_WEIGHTS[:, None] * first + (1 - PREDICTION_WEIGHTS[:, None]) * last
        residuals = target - predictions
        out.append(residuals[np.argmin(np.sum(residuals**2, axis=1))])
    return np.array(out)


def _best_interp_weights(books, items, rng, max_vectors) -> np.ndarray:
    """Least-squares (w1, w3) per packet, given the reconstructed frames 0, 2 and 4."""
    quantizer, out = PacketQuantizer(books), []
    for frames, first, last in _walk(books, items, rng, max_vectors // 4):
        _, _, middle = quantizer._frame2(frames[1, :NB_BANDS], first, last)
        out.append([_mix_weight(frames[0, :NB_BANDS], first, middle), _mix_weight(frames[2, :NB_BANDS], middle, last)])
    return np.array(out)


def _mix_weight(target, a, b) -> float:
    """argmin_w |target - (w a + (1 - w) b)|^2, clipped to [0, 1]."""
    d = a - b
    return float(np.clip(np.dot(target - b, d) / max(np.dot(d, d), 1e-9), 0.0, 1.0))
