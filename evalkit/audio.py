"""The one audio type, plus load/save, resampling, loudness and delay/alignment helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AudioError

__all__ = [
    "Audio",
    "load",
    "save",
    "resample",
    "to_mono",
    "downmix",
    "require_channels",
    "loudness",
    "normalize_loudness",
    "estimate_delay",
    "correlation_peak",
    "correlation_extremes",
    "align",
    "check_content",
    "ContentCheck",
    "SUBTYPES",
    "MIN_SECONDS",
    "MIN_COST_SECONDS",
    "MAX_SCORED_FRAMES",
    "too_long_to_score",
]

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
# Samples (all channels) one file may decode to: 2^29 float32 samples is 2 GiB, over 3 h of 48 kHz
# stereo. A compressed file (FLAC of silence) can claim far more than its size; it is refused unread.
MAX_LOAD_SAMPLES = 1 << 29
# Frames one signal may have to be aligned and scored: alignment and the metrics hold up to about 300
# bytes per frame (DNSMOS's feature maps, STOI's and LSD's spectrograms, float64 copies): a 2 h item took
# over 4 GB, 8.7 min 3.3 GB. 2^22 frames (4.4 min at 16 kHz, 87 s at 48 kHz) keeps a worker near 1 GB,
# far beyond an item of a codec test.
MAX_SCORED_FRAMES = 1 << 22

# Degenerate content (check_content): shorter than this is not scored; no metric, delay or
# bitrate means anything over less.
MIN_SECONDS = 0.25
# A round trip's own measurements need more: over less audio, bitrate and real-time factors
# are dominated by a codec's flush packets and start-up, and a delay estimate by one onset.
MIN_COST_SECONDS = 0.5
SILENCE_DBFS = -60.0  # RMS of the signal (its DC removed) below this is near-silent
CLIP_LEVEL = 0.999  # a sample this close to full scale, or beyond it, counts as clipped
# A peak-normalised file touches full scale in a sample or two; more than this is clipping.
CLIP_WARN_FRACTION = 1e-4

# Sample formats accepted by `save`, named as in libsndfile.
SUBTYPES = ("PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "VORBIS", "OPUS")


@dataclass(frozen=True, eq=False)
class Audio:
    """Immutable float32 samples shaped (channels, frames) at an integer sample rate.

    A 1-D array is taken as mono. Validation happens here, once, so every other part of
    evalkit can rely on finite, non-empty samples and a sane sample rate.
    """

    samples: np.ndarray
    sample_rate: int
    id: str | None = field(default=None)

    def __post_init__(self):
        name = self.id or "audio"
        samples = np.asarray(self.samples)
        if samples.ndim == 1:
            samples = samples[np.newaxis, :]
        if samples.ndim != 2:
            raise AudioError(f"{name}: samples must be (channels, frames), got shape {samples.shape}")
        if not np.issubdtype(samples.dtype, np.number):
            raise AudioError(f"{name}: samples must be numeric, got {samples.dtype}")
        if not np.issubdtype(samples.dtype, np.floating):  # int16 from scipy's wavfile would be read as +-32767
            raise AudioError(
                f"{name}: {samples.dtype} samples; Audio takes floats in [-1, 1] (integer PCM: divide by its "
                "full scale, e.g. 32768 for int16; evalkit.audio.load does that for files)"
            )
        if not 1 <= samples.shape[0] <= MAX_CHANNELS:
            raise AudioError(
                f"{name}: {samples.shape[0]} channels; expected 1 to {MAX_CHANNELS} (is the array transposed?)"
            )
        if samples.shape[1] == 0:
            raise AudioError(f"{name}: empty audio (0 frames)")
        if not np.all(np.isfinite(samples)):
            raise AudioError(f"{name}: contains NaN or infinite samples; fix or drop this item")
        rate: int | float = self.sample_rate  # callers may pass 16000.0
        if isinstance(rate, float) and rate.is_integer():
            rate = int(rate)
        if not isinstance(rate, (int, np.integer)) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(
                f"{name}: sample rate {rate!r} Hz is not an integer between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE}"
            )
        samples = np.array(samples, dtype=np.float32, order="C")  # always a private copy
        samples.setflags(write=False)
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "sample_rate", int(rate))

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def frames(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def with_samples(self, samples: np.ndarray, sample_rate: int | None = None) -> Audio:
        """A new Audio with the same id (and rate, unless given)."""
        return Audio(samples, sample_rate or self.sample_rate, self.id)

    def __repr__(self) -> str:
        return f"Audio(id={self.id!r}, channels={self.channels}, frames={self.frames}, sample_rate={self.sample_rate})"


def load(path: str | Path, id: str | None = None, max_seconds: float | None = None) -> Audio:
    """Read wav/flac/ogg (any format libsndfile reads) as float32; errors name the file. A file whose
    header says it lasts more than `max_seconds` is refused unread."""
    import soundfile as sf

    path = Path(path)
    name = id or path.name
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    try:
        with sf.SoundFile(str(path)) as handle:
            _check_size(path, handle.frames, handle.channels, handle.samplerate)
            if max_seconds is not None and handle.frames > max_seconds * handle.samplerate:
                raise AudioError(
                    f"{path}: {handle.frames / handle.samplerate:.1f} s long, more than the {max_seconds:.1f} s "
                    "expected; is it the right file?"
                )
            data, rate = handle.read(dtype="float32", always_2d=True), handle.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(f"{path}: not readable as audio ({err}); convert it to WAV or FLAC") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: {_no_frames(path)}")
    try:
        return Audio(data.T, rate, name)
    except AudioError as err:
        raise AudioError(f"{path}: {str(err).split(': ', 1)[-1]}") from None


def _no_frames(path: Path) -> str:
    """Why a readable file gave no frames: a WAV whose header was never finished (a streaming writer
    leaves its data length 0) still holds its samples, and a rewrite recovers them."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" and path.stat().st_size > 1024:
        return (
            f"the WAV header declares no audio, yet the file has {path.stat().st_size} bytes (a writer that "
            "was not closed?); rewrite it with a fixed header, e.g. ffmpeg -i in.wav out.wav"
        )
    return "holds no audio frames"


def _check_size(path: Path, frames: int, channels: int, rate: int) -> None:
    """Refuse, before decoding, a file whose header promises more samples than evalkit reads at once."""
    if channels > MAX_CHANNELS:  # said of the file: the array's "is it transposed?" does not apply
        raise AudioError(f"{path}: has {channels} channels, more than the {MAX_CHANNELS} evalkit reads")
    if frames * channels > MAX_LOAD_SAMPLES:
        hours = frames / max(rate, 1) / 3600
        raise AudioError(
            f"{path}: declares {frames} frames x {channels} channels ({hours:.1f} h at {rate} Hz), more "
            f"than the {MAX_LOAD_SAMPLES} samples evalkit reads at once; cut it into shorter items"
        )


def save(audio: Audio, path: str | Path, subtype: str | None = None, force: bool = True) -> Path:
    """Write audio; the format follows the suffix (.wav, .flac, .ogg), the subtype defaults to 16-bit PCM."""
    import soundfile as sf

    path = Path(path)
    if path.exists() and not force:
        raise AudioError(f"{path}: exists; pass --force to overwrite")
    if subtype is not None and subtype not in SUBTYPES:
        raise AudioError(f"{path}: unknown sample format {subtype!r}; choose one of {', '.join(SUBTYPES)}")
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported suffix; use .wav, .flac or .ogg")
    if subtype is None:
        subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sf.write(str(path), audio.samples.T, audio.sample_rate, subtype=subtype, format=fmt)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(f"{path}: cannot write {fmt}/{subtype} ({err})") from None
    return path


def resample(audio: Audio, sample_rate: int) -> Audio:
    """High-quality (soxr VHQ), delay-compensated resampling; a no-op at the same rate."""
    import soxr

    if sample_rate == audio.sample_rate:
        return audio
    out = soxr.resample(audio.samples.T, audio.sample_rate, sample_rate, quality="VHQ")
    return audio.with_samples(np.asarray(out, dtype=np.float32).T, sample_rate)


def to_mono(audio: Audio) -> Audio:
    """Average the channels."""
    if audio.channels == 1:
        return audio
    return audio.with_samples(audio.samples.mean(axis=0, keepdims=True))


# A mix this far (dB) below its channels' mean power is cancellation (a channel inverted), not audio.
CANCELLED_DB = 20.0


def downmix(audio: Audio) -> Audio:
    """`to_mono` for input the user asked to downmix: channels that cancel when averaged (one of them
    inverted) are an AudioError naming the item, not a silence that every metric then reports."""
    mixed = to_mono(audio)
    if audio.channels == 1:
        return mixed
    channels = float(np.mean(np.square(audio.samples, dtype=np.float64)))
    mix = float(np.mean(np.square(mixed.samples, dtype=np.float64)))
    if channels > 10.0 ** (SILENCE_DBFS / 10.0) and mix < channels * 10.0 ** (-CANCELLED_DB / 10.0):
        drop = f"{10 * np.log10(channels / mix):.0f} dB below them" if mix > 0 else "silent"
        raise AudioError(
            f"{audio.id or 'audio'}: its {audio.channels} channels cancel when averaged (the mix is {drop}: "
            "is one channel inverted?); fix the file's polarity or keep one channel"
        )
    return mixed


def too_long_to_score(audio: Audio, role: str = "audio") -> str | None:
    """Why `audio` is too long to align and score in one piece (MAX_SCORED_FRAMES), else None."""
    if audio.frames <= MAX_SCORED_FRAMES:
        return None
    limit = MAX_SCORED_FRAMES / audio.sample_rate / 60
    return (
        f"{role} is {audio.duration / 60:.1f} min long, more than the {limit:.1f} min ({MAX_SCORED_FRAMES} "
        f"samples at {audio.sample_rate} Hz) evalkit aligns and scores at once; cut it into shorter items"
    )


def require_channels(audio: Audio, channels: int, what: str) -> None:
    """Raise an AudioError naming the item when the channel count does not match."""
    if audio.channels != channels:
        raise AudioError(
            f"{audio.id or 'audio'}: has {audio.channels} channels but {what} takes {channels}; "
            "downmix first (--downmix on the command line, downmix: true in the experiment, or evalkit.audio.to_mono)"
        )


def loudness(audio: Audio) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, pyloudnorm)."""
    import pyloudnorm

    if audio.duration < 0.4:
        raise AudioError(
            f"{audio.id or 'audio'}: {audio.duration:.3f} s is too short for BS.1770 loudness (needs 0.4 s)"
        )
    meter = pyloudnorm.Meter(audio.sample_rate)
    return float(meter.integrated_loudness(audio.samples.T.astype(np.float64)))


def normalize_loudness(audio: Audio, target_lufs: float = -26.0) -> Audio:
    """Scale to a target integrated loudness; silent audio is an error, not a division by zero."""
    level = loudness(audio)
    if not np.isfinite(level):
        raise AudioError(f"{audio.id or 'audio'}: is silent; loudness cannot be normalised")
    gain = 10.0 ** ((target_lufs - level) / 20.0)
    return audio.with_samples(audio.samples * gain)


@dataclass(frozen=True)
class ContentCheck:
    """What `check_content` found: a `problem` that keeps the item from being scored (None when
    it can be) with its `reason`, and the fraction of clipped samples (a warning, not a problem)."""

    problem: str | None  # "too short" | "constant" | "near-silent" | None
    reason: str | None
    clipped_fraction: float
    over_range: bool  # float samples beyond full scale

    @property
    def warning(self) -> str | None:
        if self.clipped_fraction < CLIP_WARN_FRACTION and not self.over_range:
            return None
        beyond = " (float samples beyond full scale)" if self.over_range else ""
        return f"input clipped: {100 * self.clipped_fraction:.2g} % of samples at full scale{beyond}"


def check_content(audio: Audio, min_seconds: float = MIN_SECONDS) -> ContentCheck:
    """Classify degenerate content once: too short, constant (DC), near-silent; and clipping.

    Every item of a run passes here, so the usual case (finite float32 audio, plainly not
    silent) is settled in single precision, without the double-precision copy; anything near a
    decision falls through to the double-precision check, so the outcome is the same either way."""
    fast = _plainly_fine(audio, min_seconds)
    return fast if fast is not None else _check_content_exactly(audio, min_seconds)


# The smallest float32 whose double-precision value reaches CLIP_LEVEL: comparing float32 samples
# with it decides exactly what comparing their double-precision values with CLIP_LEVEL decides.
_CLIP_LEVEL_32 = np.float32(CLIP_LEVEL)
if float(_CLIP_LEVEL_32) < CLIP_LEVEL:
    _CLIP_LEVEL_32 = np.nextafter(_CLIP_LEVEL_32, np.float32(np.inf))


def _plainly_fine(audio: Audio, min_seconds: float) -> ContentCheck | None:
    """The check's outcome for audio long enough and varying at least twice the silence floor
    (RMS about each channel's mean, in single precision: its rounding errors are below a part in
    10^5, far inside the factor of two); None when that is not plain and the exact check decides."""
    x = audio.samples
    if x.dtype != np.float32 or audio.duration < min_seconds:
        return None
    peak = float(max(x.max(), -x.min()))
    if not (peak <= 4.0):  # beyond-range or non-finite samples: leave it to the exact check
        return None
    deviation = x - x.mean(axis=1, keepdims=True)
    if float(np.sqrt(np.mean(deviation * deviation))) < 2.0 * 10.0 ** (SILENCE_DBFS / 20.0):
        return None
    clipped = np.count_nonzero(np.abs(x) >= _CLIP_LEVEL_32) / x.size if peak >= _CLIP_LEVEL_32 else 0.0
    return ContentCheck(None, None, clipped, peak > 1.0)


def _check_content_exactly(audio: Audio, min_seconds: float) -> ContentCheck:
    x = audio.samples.astype(np.float64)
    level = np.abs(x)
    clipped, over = float(np.mean(level >= CLIP_LEVEL)), bool(np.any(level > 1.0))
    varying = float(np.sqrt(np.mean((x - x.mean(axis=1, keepdims=True)) ** 2)))
    offset = float(np.max(np.abs(x.mean(axis=1))))
    floor = 10.0 ** (SILENCE_DBFS / 20.0)
    problem, reason = None, None
    if audio.duration < min_seconds:
        problem = "too short"
        count = "1 sample" if audio.frames == 1 else f"{audio.frames} samples"
        reason = f"{count} ({audio.duration:.3g} s) is shorter than the {min_seconds:g} s minimum"
    elif varying < floor and offset >= floor:
        problem, reason = "constant", f"constant signal (DC offset {offset:.3g}, nothing varies)"
    elif varying < floor:
        shown = f"{20 * np.log10(varying):.0f} dBFS" if varying > 0 else "digital silence"
        problem, reason = "near-silent", f"near-silent (RMS {shown}, below {SILENCE_DBFS:g} dBFS)"
    return ContentCheck(problem, reason, clipped, over)


def estimate_delay(ref: Audio, deg: Audio, max_delay: int | None = None) -> int:
    """Samples by which `deg` lags `ref` (negative if it leads), from the cross-correlation peak.

    The largest positive peak wins: an inverted side lobe must not (codecs keep polarity).

    Both are mixed to mono and must share a sample rate. The search is limited to
    ±max_delay samples (default: a quarter second).
    """
    return correlation_peak(ref, deg, max_delay)[0]


def correlation_peak(
    ref: Audio, deg: Audio, max_delay: int | None = None, weight: Callable[[int], np.ndarray] | None = None
) -> tuple[int, float]:
    """(lag, normalised correlation at that lag): `estimate_delay` plus how much to trust it; see
    `correlation_extremes`."""
    return correlation_extremes(ref, deg, max_delay, weight)[0]


def correlation_extremes(
    ref: Audio, deg: Audio, max_delay: int | None = None, weight: Callable[[int], np.ndarray] | None = None
) -> tuple[tuple[int, float], tuple[int, float]]:
    """The correlation's peak and trough, each (lag, normalised correlation): the trough is the
    peak of `deg` with its polarity flipped, from the same FFTs.

    The correlation is divided by both signals' whole energies, so 1.0 means `deg` is an exact
    shifted copy and values near 0 mean nothing in `deg` resembles `ref`. `weight(size)`, when
    given, is a power response per bin of a real FFT of `size` points: both signals are filtered
    by it (zero phase) in the frequency domain, at no cost beyond the correlation's own FFTs.
    """
    from scipy.fft import irfft, next_fast_len, rfft  # lazy: slow to import, and the CLI starts without it

    if ref.sample_rate != deg.sample_rate:
        raise AudioError(
            f"{deg.id or 'audio'}: sample rate {deg.sample_rate} differs from the reference's {ref.sample_rate}"
        )
    if max_delay is None:
        max_delay = ref.sample_rate // 4
    # Single precision: the peak's place and height are what matter, at half the FFTs' cost.
    a, b = to_mono(ref).samples[0], to_mono(deg).samples[0]
    max_delay = max(0, min(max_delay, max(len(a), len(b)) - 1))
    # A circular correlation this long equals the linear one at every lag within ±max_delay.
    size = next_fast_len(max(len(a), len(b)) + max_delay, real=True)
    spectrum_a, spectrum_b = rfft(a, size), rfft(b, size)
    cross = spectrum_b * np.conj(spectrum_a)
    # Each signal's spectrum is scaled by the response, so their product and energies by its square.
    power = None if weight is None else (weight(size) ** 2).astype(np.float32)
    if power is not None:
        cross *= power
    energy = float(np.sqrt(_filtered_energy(spectrum_a, power, size) * _filtered_energy(spectrum_b, power, size)))
    corr = irfft(cross, size)
    lags = np.concatenate([np.arange(0, max_delay + 1), np.arange(-max_delay, 0)])
    values = corr[lags]
    best, worst = int(np.argmax(values)), int(np.argmin(values))
    scale = 1.0 / energy if energy > 0 else 0.0
    return (int(lags[best]), float(values[best] * scale)), (int(lags[worst]), float(values[worst] * scale))


def _filtered_energy(spectrum: np.ndarray, power: np.ndarray | None, size: int) -> float:
    """Energy of a signal (filtered by `power`, if given) from its real FFT, summed in double
    precision (Parseval: the bins between DC and Nyquist stand for two)."""
    terms = np.abs(spectrum).astype(np.float64) ** 2
    if power is not None:
        terms *= power
    return float((2 * terms.sum() - terms[0] - (terms[-1] if size % 2 == 0 else 0)) / size)


def align(deg: Audio, delay: int, frames: int) -> Audio:
    """Drop `delay` leading samples (or pad if negative) and trim or zero-pad to `frames`."""
    x = deg.samples
    if delay >= 0:
        x = x[:, delay:]
    else:
        x = np.pad(x, ((0, 0), (-delay, 0)))
    if x.shape[1] >= frames:
        x = x[:, :frames]
    else:
        x = np.pad(x, ((0, 0), (0, frames - x.shape[1])))
    return deg.with_samples(x)
