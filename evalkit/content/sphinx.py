"""PocketSphinx phone-loop recognition: the English acoustic model and phone n-gram shipped in its wheel."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import Audio, resample, to_mono
from ..errors import MetricError
from .phones import Phone, normalize_label

__all__ = ["SphinxRecognizer", "SPHINX_RATE", "FRAME_SECONDS", "SETTINGS"]

SPHINX_RATE = 16000  # the shipped en-us model is trained on 16 kHz audio
FRAME_SECONDS = 0.01  # 100 frames per second (pocketsphinx's -frate default)
# Measured on the project's validation set against the text's dictionary phones: a low
# language weight (the phone n-gram is weak evidence) cuts the phone error rate from 0.48 to
# about 0.35 (0.368 on the 448 sentences bench_recognizer reads); two Gaussians per frame instead of four, a narrower phone-exit beam and the phone
# bigram instead of the trigram (see _bigram_lm) together halve the decode time at no cost in
# accuracy (a narrower HMM beam, or skipping frames, does cost accuracy). Faster settings
# still (one Gaussian, a unigram) and their cost are in benchmarks/bench_recognizer.py.
SETTINGS = {"lw": 2.0, "topn": 2, "pbeam": 1e-8}


@dataclass
class SphinxRecognizer:
    """Phone-loop decoding with timestamps. Output never depends on what was decoded before:
    pocketsphinx adapts its noise estimate and cepstral means as it goes, so each utterance
    starts from a fresh front end and feature state (`reinit_feat`), on a decoder kept per
    thread and setting (loading the model and phone n-gram again would cost a few percent)."""

    settings: dict = field(default_factory=lambda: dict(SETTINGS))
    bigram: bool = True  # False: the wheel's phone trigram as shipped (slower, about as accurate)
    name: str = "pocketsphinx"

    @property
    def version(self) -> str:
        tuned = ",".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"{_package_version()} allphone-{'bigram' if self.bigram else 'trigram'} {tuned}"

    def recognize(self, audio: Audio) -> list[Phone]:
        pcm = _pcm16(audio)
        key = (tuple(sorted(self.settings.items())), self.bigram)
        decoders = _kept.__dict__.setdefault("decoders", {})
        decoder = decoders.pop(key, None)  # out of the cache while in use: an error drops it
        if decoder is None:
            decoder = self._decoder()
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        phones = [p for p in (_phone(s) for s in decoder.seg()) if p is not None]
        decoders[key] = decoder
        return phones

    def _phone_lm(self) -> str:
        from pocketsphinx import get_model_path

        return _bigram_lm() if self.bigram else get_model_path("en-us/en-us-phone.lm.bin")

    def _decoder(self):
        from pocketsphinx import Decoder, get_model_path

        return Decoder(
            hmm=get_model_path("en-us/en-us"),
            allphone=self._phone_lm(),
            lm=None,
            dict=None,
            loglevel="FATAL",
            samprate=SPHINX_RATE,
            **self.settings,
        )


_kept = threading.local()  # decoders by setting, one set per thread (a decoder is not thread-safe)


@lru_cache(maxsize=1)
def _package_version() -> str:
    """pocketsphinx's version, read once: reading package metadata costs milliseconds per call."""
    from importlib.metadata import version

    return version("pocketsphinx")


@lru_cache(maxsize=1)
def _bigram_lm() -> str:
    """The wheel's phone trigram cut to a bigram, written once per process to a temporary file.

    Phone-loop search keeps a copy of each phone per language-model history, so a bigram
    searches far fewer copies; truncation keeps a proper model (the unigram back-off
    weights were computed for the bigram level).
    """
    from pocketsphinx import Config, LogMath, NGramModel, get_model_path

    folder = Path(tempfile.mkdtemp(prefix="evalkit-phones-"))
    atexit.register(shutil.rmtree, folder, True)
    trigram = folder / "phone-trigram.arpa"
    # Keep the LogMath in a name: the model does not hold a Python reference to it, and a
    # collected one leaves the model computing with freed memory (garbage probabilities).
    logmath = LogMath(1.0001)
    model = NGramModel(Config(loglevel="FATAL"), logmath, get_model_path("en-us/en-us-phone.lm.bin"))
    model.write(str(trigram), 1)  # 1: ARPA text
    del model, logmath
    bigram = folder / "phone-bigram.arpa"
    bigram.write_text(_truncate_arpa(trigram.read_text(), 2))
    return str(bigram)


def _truncate_arpa(text: str, order: int) -> str:
    """An ARPA model keeping n-grams up to `order`; the top order loses its back-off weights."""
    sections: dict[int, list[str]] = {}
    current = 0
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            current = int(line[1:].split("-")[0])
        elif current and line.strip() and not line.startswith("\\"):
            sections.setdefault(current, []).append(line)
    kept = [[_without_backoff(x, n) if n == order else x for x in sections[n]] for n in range(1, order + 1)]
    counts = "".join(f"ngram {n}={len(lines)}\n" for n, lines in enumerate(kept, 1))
    body = "".join(f"\n\\{n}-grams:\n" + "\n".join(lines) + "\n" for n, lines in enumerate(kept, 1))
    return f"\\data\\\n{counts}{body}\n\\end\\\n"


def _without_backoff(line: str, n: int) -> str:
    parts = line.split()
    return f"{parts[0]}\t{' '.join(parts[1 : 1 + n])}"


def _pcm16(audio: Audio) -> np.ndarray:
    x = resample(to_mono(audio), SPHINX_RATE).samples[0]
    if not np.any(x):
        raise MetricError(f"{audio.id or 'audio'}: digital silence; nothing to recognize")
    return np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def _phone(segment) -> Phone | None:
    """A Phone from a decoder segment; confidence stays 1.0 because phone-loop search gives no
    posteriors (the detector takes its confidence from the spectra instead)."""
    label = normalize_label(segment.word)
    if label is None:
        return None
    start, end = segment.start_frame * FRAME_SECONDS, (segment.end_frame + 1) * FRAME_SECONDS  # end_frame is inclusive
    return Phone(label, round(start, 3), round(end, 3))
