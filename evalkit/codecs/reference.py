"""Reference conditions: the hidden reference, the MUSHRA low-pass anchors and the P.810 MNRU.

All three are "codecs" whose bitstream is the (processed) signal as 16-bit PCM in 20 ms
packets, so the harness, the database and the listening-test server treat them exactly like
the codecs under test.

Why 16-bit PCM and not float32 for the processed signals: the hidden reference is 16-bit PCM,
so every stimulus of a listening test then has the same word length; the quantisation noise
(about -98 dBFS, white) lies far below the anchors' 50 dB stop-band requirement and below any
MNRU noise of interest (Q up to 50 dB), and float32 would only double the bitrate. Samples
beyond full scale are clipped, as any 16-bit playback chain would.

* ``identity``: transparent; the MUSHRA hidden reference.
* ``lowpass``: the anchors of ITU-R BS.1534-3. A linear-phase FIR (Parks-McClellan) meets the
  mask with margin: pass-band ripple within +-0.1 dB up to the cut-off, at least 25 dB at
  8/7 of it and 50 dB at 9/7 of it (4 and 4.5 kHz for the 3.5 kHz anchor). The group delay is
  exactly (taps - 1) / 2 samples and is declared as the lookahead.
* ``mnru``: the Modulated Noise Reference Unit of ITU-T P.810, y = x (1 + 10^(-Q/20) N) with
  Gaussian N, narrow-band (8 kHz, 100-3400 Hz) or wideband (16 kHz, 70-7000 Hz): an input
  high-pass removes DC and the output low-pass band-limits the noise, as in P.810's digital
  MNRU. Both filters run forward and backward (zero phase), so the lookahead is zero.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..errors import CodecError, ConfigError
from .base import Codec, CodecInfo, check_packet_sizes, register_backend

__all__ = ["Identity", "Lowpass", "MNRU", "anchor_taps", "mnru_filters", "mnru_process", "MNRU_BANDS"]

# -- 16-bit PCM packets ------------------------------------------------------------------


class _PcmCodec(Codec):
    """A codec whose bitstream is `_process(input)` as little-endian 16-bit PCM, 20 ms a packet."""

    sample_rate: int

    def _process(self, x: np.ndarray) -> np.ndarray:
        return x

    @property
    def _frame(self) -> int:
        return self.sample_rate // 50

    def _encode(self, samples):
        y = self._process(samples[0].astype(np.float64)) * 32768.0
        # In place: the hidden reference goes through here for every item of a run.
        pcm = np.clip(np.round(y, out=y), -32768, 32767, out=y).astype("<i2").tobytes()
        size = 2 * self._frame
        # The rate travels in the header: a card at `sample_rate: item` is decoded at the rate it ran at.
        return {"sample_rate": self.sample_rate}, [pcm[i : i + size] for i in range(0, len(pcm), size)]

    def _decode(self, header, packets):
        if header.get("sample_rate", self.sample_rate) != self.sample_rate:
            raise CodecError(
                f"{self.backend}: the bitstream holds {header['sample_rate']} Hz PCM; this decoder "
                f"is configured for {self.sample_rate} Hz"
            )
        frame = self._frame
        check_packet_sizes(packets, 2, 2 * frame, self.backend)
        if any(p is not None and len(p) % 2 for p in packets):
            raise CodecError(f"{self.backend}: a packet holds an odd number of bytes; 16-bit PCM needs whole samples")
        # A lost packet becomes silence: reference conditions do not conceal.
        silence = bytes(2 * frame)
        pcm = np.frombuffer(b"".join(p if p is not None else silence for p in packets), "<i2")
        return pcm.astype(np.float32) / 32768.0

    def _info(self, version: str, family: str, lookahead: int, streaming: bool = True) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=version,
            family=family,
            sample_rate=self.sample_rate,
            frame_samples=self._frame,
            lookahead_samples=lookahead,
            nominal_bitrate=16.0 * self.sample_rate,
            streaming=streaming,
        )


def _check_rate(sample_rate, backend: str) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or sample_rate != int(sample_rate):
        raise ConfigError(f"{backend}: sample_rate must be an integer, got {sample_rate!r}")
    if not 8000 <= sample_rate <= 192000:
        raise ConfigError(f"{backend}: sample_rate must lie between 8000 and 192000 Hz, got {sample_rate!r}")
    return int(sample_rate)


@register_backend("identity")
class Identity(_PcmCodec):
    """Transparent 16-bit PCM in 20 ms packets; the MUSHRA hidden reference."""

    def __init__(self, sample_rate: int = 16000):
        # any rate an item may have; a rate from a stream's header (`evalkit decode`) is checked here too
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 768000:
            raise ConfigError(f"identity: sample_rate must be an integer from 1000 to 768000 Hz, got {sample_rate!r}")
        self.sample_rate = sample_rate

    @property
    def info(self) -> CodecInfo:
        return self._info("pcm_s16le", "reference", 0)


# -- BS.1534-3 low-pass anchors ------------------------------------------------------------

# The BS.1534-3 mask, stated for fc = 3.5 kHz and scaled with fc: pass band 0..fc within
# +-0.1 dB, >= 25 dB at 8/7 fc (4 kHz), >= 50 dB at 9/7 fc (4.5 kHz). The design targets keep
# a margin: 0.05 dB ripple, and a stop band from 8/7 fc that holds 60 dB.
_STOP_RATIO = 8 / 7
_RIPPLE_TARGET_DB = 0.05
_STOP_TARGET_DB = 60.0
_MAX_TAPS = 4001


def _stop_edge(cutoff_hz: float, sample_rate: int) -> float:
    """8/7 fc; squeezed to halfway to Nyquist when 8/7 fc does not fit (e.g. 7 kHz at 16 kHz)."""
    nyquist = sample_rate / 2
    return min(cutoff_hz * _STOP_RATIO, (cutoff_hz + nyquist) / 2)


def _signal():
    from scipy import signal  # lazy: importing it takes most of a second, `evalkit codecs` needs none of it

    return signal


def _meets_targets(taps: np.ndarray, cutoff_hz: float, stop_hz: float, sample_rate: int) -> bool:
    signal = _signal()
    freqs = np.linspace(0.0, sample_rate / 2, 1 << 14)
    _, h = signal.freqz(taps, worN=freqs, fs=sample_rate)
    db = 20 * np.log10(np.maximum(np.abs(h), 1e-12))
    ripple = np.max(np.abs(db[freqs <= cutoff_hz]))
    return ripple <= _RIPPLE_TARGET_DB and -np.max(db[freqs >= stop_hz]) >= _STOP_TARGET_DB


@lru_cache(maxsize=32)
def anchor_taps(cutoff_hz: float, sample_rate: int = 48000) -> np.ndarray:
    """The anchor's linear-phase FIR: the shortest odd-length equiripple design meeting the targets.

    Odd length (type I) makes the group delay a whole number of samples. Deterministic for a
    given scipy, so a design is kept on disk per scipy version (`_design_cache`) and reused;
    the tap count goes into the codec's version string.
    """
    nyquist = sample_rate / 2
    if not 0 < cutoff_hz < nyquist:
        raise ConfigError(f"lowpass: cutoff_hz {cutoff_hz!r} must lie between 0 and Nyquist ({nyquist:g} Hz)")
    cached = _design_cache(cutoff_hz, sample_rate)
    try:
        taps = np.load(cached, allow_pickle=False)
    except (OSError, ValueError):
        taps = None
    if taps is None or taps.dtype != np.float64 or taps.ndim != 1 or len(taps) % 2 == 0:
        taps = _design(cutoff_hz, sample_rate)
        _store(cached, taps)
    taps.setflags(write=False)  # cached: shared by every caller
    return taps


def _design_cache(cutoff_hz: float, sample_rate: int) -> Path:
    """Where the design for these settings and this scipy lives ($XDG_CACHE_HOME/evalkit/anchors)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    targets = f"{_RIPPLE_TARGET_DB:g}-{_STOP_TARGET_DB:g}-{_STOP_RATIO:.6f}"
    return base / "evalkit" / "anchors" / f"remez-{cutoff_hz:g}-{sample_rate}-{targets}-scipy{version('scipy')}.npy"


def _store(path: Path, taps: np.ndarray) -> None:
    """Write atomically; a cache that cannot be written only costs the next run the design again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as handle:
            np.save(handle, taps, allow_pickle=False)
        partial.replace(path)
    except OSError:
        pass


def _design(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    signal, nyquist = _signal(), sample_rate / 2
    stop = _stop_edge(cutoff_hz, sample_rate)
    ripple = 10 ** (_RIPPLE_TARGET_DB / 20) - 1
    atten = 10 ** (-_STOP_TARGET_DB / 20)
    # Kaiser's length estimate, started a little low so the search finds the shortest filter.
    estimate = (-20 * math.log10(math.sqrt(ripple * atten)) - 13) / (14.6 * (stop - cutoff_hz) / sample_rate)
    numtaps = max(11, int(0.8 * estimate) | 1)
    while numtaps <= _MAX_TAPS:
        taps = signal.remez(numtaps, [0, cutoff_hz, stop, nyquist], [1, 0], weight=[1, ripple / atten], fs=sample_rate)
        if _meets_targets(taps, cutoff_hz, stop, sample_rate):
            return taps
        numtaps += 2
    raise ConfigError(
        f"lowpass: no filter up to {_MAX_TAPS} taps meets the mask for {cutoff_hz:g} Hz at {sample_rate} Hz"
    )


@register_backend("lowpass")
class Lowpass(_PcmCodec):
    """A BS.1534-3 anchor: `cutoff_hz` 3500 (low anchor) or 7000 (mid anchor), 48 kHz by default."""

    def __init__(self, cutoff_hz: float = 3500.0, sample_rate: int = 48000):
        self.sample_rate = _check_rate(sample_rate, "lowpass")
        if isinstance(cutoff_hz, bool) or not isinstance(cutoff_hz, (int, float)):
            raise ConfigError(f"lowpass: cutoff_hz must be a number of Hz, got {cutoff_hz!r}")
        self.cutoff_hz = float(cutoff_hz)
        self.taps = anchor_taps(self.cutoff_hz, self.sample_rate)

    @property
    def info(self) -> CodecInfo:
        n = len(self.taps)
        return self._info(f"fir-remez-n={n}-fc={self.cutoff_hz:g}", "anchor", (n - 1) // 2)

    def _process(self, x):
        # Causal: the output lags by exactly (n - 1) / 2; the base class padded the tail for it.
        return _signal().lfilter(self.taps, 1.0, x)


# -- P.810 MNRU ----------------------------------------------------------------------------

# band -> (sample rate, lower edge, upper edge), as P.810 gives them.
MNRU_BANDS = {"nb": (8000, 100.0, 3400.0), "wb": (16000, 70.0, 7000.0)}
_HP_ORDER = 2  # per pass; run forward and backward
_LP_ORDER = 6  # elliptic, 0.05 dB ripple per pass (0.1 dB both ways), 40 dB per pass
_LP_RIPPLE_DB, _LP_STOP_DB = 0.05, 40.0


@lru_cache(maxsize=4)
def mnru_filters(band: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(input high-pass sos, output low-pass sos, noise power gain of the zero-phase low-pass)."""
    rate, low, high = MNRU_BANDS[band]
    signal = _signal()
    # Butterworth |H|^2 = 1/(1+(fc/f)^2n); run twice, it is -3 dB at `low` when fc is moved so.
    corner = low * (math.sqrt(2) - 1) ** (1 / (2 * _HP_ORDER))
    hp = signal.butter(_HP_ORDER, corner, "highpass", fs=rate, output="sos")
    lp = signal.ellip(_LP_ORDER, _LP_RIPPLE_DB, _LP_STOP_DB, high, fs=rate, output="sos")
    # The modulated noise x*N is white; forward-backward filtering passes mean(|H|^4) of its power.
    _, h = signal.sosfreqz(lp, worN=1 << 14, fs=rate)
    return hp, lp, float(np.mean(np.abs(h) ** 4))


def mnru_process(x: np.ndarray, q_db: float, band: str = "wb", seed: int = 0, noise: bool = True) -> np.ndarray:
    """P.810 MNRU on 1-D samples at the band's rate; `noise=False` gives the signal path alone.

    The noise gain is scaled by the low-pass's noise power gain, so the ratio of signal-path
    power to modulated-noise power at the output is Q dB (the MNRU's definition of Q).
    """
    hp, lp, noise_gain = mnru_filters(band)
    signal = _signal()
    s = signal.sosfiltfilt(hp, x)
    if noise:
        rng = np.random.default_rng(seed)
        g = 10 ** (-q_db / 20) / math.sqrt(noise_gain)
        s = s * (1.0 + g * rng.standard_normal(len(s)))
    return signal.sosfiltfilt(lp, s)


@register_backend("mnru")
class MNRU(_PcmCodec):
    """ITU-T P.810 MNRU at `q_db`; `band` "wb" (16 kHz) or "nb" (8 kHz); seeded noise."""

    def __init__(self, q_db: float, band: str = "wb", seed: int = 0):
        if band not in MNRU_BANDS:
            raise ConfigError(f"mnru: band must be one of {sorted(MNRU_BANDS)}, got {band!r}")
        if not isinstance(q_db, (int, float)) or isinstance(q_db, bool) or not -20 <= q_db <= 100:
            raise ConfigError(f"mnru: q_db must be a number from -20 to 100 dB, got {q_db!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"mnru: seed must be a non-negative integer, got {seed!r}")
        self.q_db, self.band, self.seed = float(q_db), band, seed
        self.sample_rate = MNRU_BANDS[band][0]

    @property
    def info(self) -> CodecInfo:
        _, low, high = MNRU_BANDS[self.band]
        version = f"p810-{self.band}-hp{low:g}-bw{_HP_ORDER}-lp{high:g}-ellip{_LP_ORDER}-zerophase-pcg64"
        return self._info(version, "mnru", 0, streaming=False)  # zero-phase filters need the whole signal

    def _process(self, x):
        return mnru_process(x, self.q_db, self.band, self.seed)
