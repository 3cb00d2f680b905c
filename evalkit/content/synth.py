"""Offline speech synthesis with phone timings: Debian flite and festival voices."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..audio import Audio, load, resample
from ..errors import ConfigError, UnavailableError

__all__ = ["Segment", "Synthesis", "synthesize", "VOICES", "available_voices", "SYNTH_RATE"]

SYNTH_RATE = 16000
# engine:voice. flite's kal (8 kHz) and awb_time (a clock voice) are left out.
VOICES = (
    "flite:slt",
    "flite:kal16",
    "flite:awb",
    "flite:rms",
    "festival:kal_diphone",
    "festival:ked_diphone",
    "festival:cmu_us_slt_arctic_hts",
)
INSTALL = "apt-get install flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
TIMEOUT = 60  # seconds per sentence; both engines take well under one

_FESTIVAL_SCRIPT = """(voice_{voice})
(Parameter.set 'Duration_Stretch {stretch})
(set! utt (utt.synth (Utterance Text "{text}")))
(utt.save.wave utt "{wav}" 'riff)
(mapcar (lambda (s) (format t "%s:%f " (item.name s) (item.feat s "end"))) (utt.relation.items utt 'Segment))
"""


@dataclass(frozen=True)
class Segment:
    """One synthesized phone in the engine's own phone set; times in seconds."""

    phone: str
    start: float
    end: float


@dataclass(frozen=True)
class Synthesis:
    audio: Audio  # mono, SYNTH_RATE
    segments: tuple[Segment, ...]


def synthesize(text: str, voice: str, stretch: float = 1.0) -> Synthesis:
    """Speak `text` with `voice` ("flite:slt", "festival:kal_diphone", ...); deterministic.

    `stretch` scales every duration (1.05: five percent slower), for a second take of a sentence.
    """
    engine, _, name = voice.partition(":")
    if engine not in ("flite", "festival") or not name:
        raise ConfigError(f"unknown voice {voice!r}; known: {', '.join(VOICES)}")
    if shutil.which(engine) is None:
        raise UnavailableError(f"{engine} is not installed; install with: {INSTALL}")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        if engine == "flite":
            printed = _flite(text, name, wav, stretch)
        else:
            printed = _festival(text, name, wav, Path(tmp), stretch)
        audio = resample(load(wav, id=voice), SYNTH_RATE)
    return Synthesis(audio, _segments(printed))


def available_voices() -> list[str]:
    """The voices of VOICES that synthesize here (a quick probe per voice)."""
    found = []
    for voice in VOICES:
        try:
            synthesize("a", voice)
            found.append(voice)
        except (UnavailableError, ConfigError, RuntimeError, OSError):
            pass
    return found


def _flite(text: str, voice: str, wav: Path, stretch: float) -> str:
    return _run(
        ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:g}", "-psdur", "-t", text, "-o", str(wav)]
    )


def _festival(text: str, voice: str, wav: Path, tmp: Path, stretch: float) -> str:
    script = tmp / "say.scm"
    script.write_text(_FESTIVAL_SCRIPT.format(voice=voice, text=text.replace('"', ""), wav=wav, stretch=f"{stretch:g}"))
    return _run(["festival", "--batch", str(script)])


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout


def _segments(printed: str) -> tuple[Segment, ...]:
    """Parse "phone:end phone:end ..." (both engines print segment end times)."""
    segments, start = [], 0.0
    for token in printed.split():
        phone, sep, end = token.rpartition(":")
        if not sep:
            continue
        try:
            stop = float(end)
        except ValueError:
            continue
        segments.append(Segment(phone, start, stop))
        start = stop
    if not segments:
        raise RuntimeError(f"the synthesizer printed no phone timings: {printed[:200]!r}")
    return tuple(segments)
