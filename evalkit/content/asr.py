"""Word recognition with PocketSphinx's bundled US English model, and word/character error rates.

The acoustic model, the 3-gram language model and the CMU dictionary all ship in the
pocketsphinx wheel, so nothing is downloaded. A fresh decoder per call keeps the output
independent of what was decoded before (the decoder adapts its cepstral mean as it goes).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from ..errors import MetricError
from .lexicon import words

__all__ = ["transcribe", "error_rates", "RATE"]

RATE = 16000
MEMO = 32  # transcripts kept per process: a reference is shared by every codec
_memo: OrderedDict = OrderedDict()


def transcribe(x: np.ndarray) -> str:
    """Lower-case words recognised in mono 16 kHz `x` (fillers and silences dropped)."""
    key = hashlib.sha1(np.ascontiguousarray(x, dtype=np.float64)).hexdigest()
    if key not in _memo:
        _memo[key] = _decode(x)
        while len(_memo) > MEMO:
            _memo.popitem(last=False)
    _memo.move_to_end(key)
    return _memo[key]


def error_rates(reference: str, hypothesis: str) -> tuple[float, float]:
    """(WER, CER) of `hypothesis` against `reference`, both normalised to lower-case words."""
    import jiwer

    ref, hyp = " ".join(words(reference)), " ".join(words(hypothesis))
    if not ref:
        raise MetricError("the reference has no words to compare with")
    if not hyp:  # everything was deleted
        return 1.0, 1.0
    return float(jiwer.wer(ref, hyp)), float(jiwer.cer(ref, hyp))


def _decode(x: np.ndarray) -> str:
    from pocketsphinx import Decoder

    if not np.any(x):
        raise MetricError("digital silence; nothing to recognise")
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
    decoder = Decoder(loglevel="FATAL", samprate=RATE)  # the wheel's en-us model, LM and dictionary
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return " ".join(words(hypothesis.hypstr)) if hypothesis is not None else ""
