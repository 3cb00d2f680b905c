"""Environment checks before the trials: is the listener on headphones, and do they hear faint tones?

Three checks, each a few pages of one stimulus and one question (P.808 asks for an environment and
headphone check and keeps the hearing-test answers):

- `antiphase` (Woods et al. 2017): three 200 Hz tones, one 6 dB quieter; one of the louder two is
  in antiphase between the ears, which loudspeakers partly cancel, so over loudspeakers the
  antiphase tone sounds quietest. "Which tone was the quietest?"
- `huggins` (Milne et al. 2021): three bursts of noise; in one, a narrow band around 600 Hz is
  phase-inverted in one ear, which only headphones turn into a faint pitch. "Which noise had a tone?"
- `tones`: one to five 1 kHz tones, each 6 dB fainter than the last. "How many tones did you hear?"

Stimuli are generated when the test is created (stereo, the test's rate), served like any other
stimulus (blinded, dithered); the right answers live only on the server. A session that answers
fewer than `pass` of a check's pages right ends, screened out, with the reason recorded.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from ._check import Checker

__all__ = ["CHECKS", "read_environment", "prepare_environment", "session_trials", "prompt", "score", "FOLDER"]

FOLDER = "environment"  # under the test's stimulus folder
CHECKS = {  # kind: (default pages, default pass, question, answer labels)
    "antiphase": (6, 5, "Which of the three tones was the quietest?", ("First", "Second", "Third")),
    "huggins": (6, 5, "Which of the three noises contained a faint tone?", ("First", "Second", "Third")),
    "tones": (4, 3, "How many tones did you hear?", ("0", "1", "2", "3", "4", "5")),
}
_TONE_S, _GAP_S, _EDGE_S, _RAMP_S = 1.0, 0.5, 0.25, 0.1


def read_environment(check: Checker, value: Any, sample_rate: int) -> tuple[dict[str, Any], ...]:
    """`environment`: a check or a list of checks, each {check: antiphase | huggins | tones, trials, pass}."""
    if value is None:
        return ()
    entries = value if isinstance(value, list) else [value]
    found = []
    for index, entry in enumerate(entries):
        key = f"environment[{index}]" if isinstance(value, list) else "environment"
        entry = check.mapping(entry, key, {"check", "trials", "pass"}, required=("check",))
        kind = check.choice(entry["check"], f"{key}.check", tuple(CHECKS))
        pages = check.integer(entry.get("trials", CHECKS[kind][0]), f"{key}.trials", 1, 20)
        needed = check.integer(entry.get("pass", min(pages, CHECKS[kind][1])), f"{key}.pass", 0, pages)
        found.append({"check": kind, "trials": pages, "pass": needed, "stimuli": _variants(kind, pages, index)})
    if sample_rate < 8000:
        check.fail("sample_rate", "environment checks need at least 8 kHz")
    return tuple(found)


def _variants(kind: str, pages: int, index: int) -> list[dict[str, Any]]:
    """One stimulus per page, answers spread evenly over the choices (fixed: the definition's hash holds them)."""
    choices = len(CHECKS[kind][3])
    answers = [k % 3 + 1 for k in range(pages)] if choices == 3 else [k % 5 + 1 for k in range(pages)]
    random.Random(f"{kind}|{index}").shuffle(answers)
    duration = 3 * _TONE_S + 2 * _GAP_S + 2 * _EDGE_S if choices == 3 else 5 * _TONE_S + 4 * _GAP_S + 2 * _EDGE_S
    return [
        {"file": f"{FOLDER}/{kind}-{index}-{k}.wav", "answer": answer, "duration": duration}
        for k, answer in enumerate(answers)
    ]


def prepare_environment(environment: list[dict[str, Any]], out_dir: Path, sample_rate: int) -> None:
    """Write every check's stimuli as 16-bit stereo WAV under `out_dir`."""
    import soundfile as sf

    for check in environment:
        for number, stimulus in enumerate(check["stimuli"]):
            samples = _GENERATORS[check["check"]](stimulus["answer"], sample_rate, np.random.default_rng(number))
            path = out_dir / stimulus["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), samples, sample_rate, subtype="PCM_16")


def _ramp(n: int, rate: int) -> np.ndarray:
    ramp = min(int(_RAMP_S * rate), n // 2)
    window = np.ones(n)
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    window[:ramp], window[n - ramp :] = edge, edge[::-1]
    return window


def _sequence(bursts: list[np.ndarray], rate: int) -> np.ndarray:
    """Stereo bursts (n, 2) one after another, with gaps and a little silence at both ends."""
    gap, edge = np.zeros((int(_GAP_S * rate), 2)), np.zeros((int(_EDGE_S * rate), 2))
    parts = [edge]
    for k, burst in enumerate(bursts):
        parts += ([gap] if k else []) + [burst]
    return np.concatenate(parts + [edge]).astype(np.float32)


def _antiphase(answer: int, rate: int, rng) -> np.ndarray:
    n = int(_TONE_S * rate)
    tone = 0.1 * np.sin(2 * np.pi * 200 * np.arange(n) / rate) * _ramp(n, rate)
    flipped = rng.choice([k for k in (1, 2, 3) if k != answer])
    bursts = []
    for position in (1, 2, 3):
        left = tone * (10 ** (-6 / 20) if position == answer else 1.0)
        bursts.append(np.stack([left, -left if position == flipped else left], axis=1))
    return _sequence(bursts, rate)


def _huggins(answer: int, rate: int, rng) -> np.ndarray:
    n = int(_TONE_S * rate)
    bursts = []
    for position in (1, 2, 3):
        noise = rng.standard_normal(n)
        right = noise.copy()
        if position == answer:  # invert the phase of 600 Hz +- 6 % in the right ear: a pitch only headphones make
            spectrum = np.fft.rfft(noise)
            freqs = np.fft.rfftfreq(n, 1 / rate)
            spectrum[(freqs > 600 * 0.94) & (freqs < 600 * 1.06)] *= -1
            right = np.fft.irfft(spectrum, n)
        window = 0.05 * _ramp(n, rate)
        bursts.append(np.stack([noise * window, right * window], axis=1))
    return _sequence(bursts, rate)


def _tones(answer: int, rate: int, rng) -> np.ndarray:
    """`answer` 1 kHz tones getting fainter by 6 dB each (from about -26 dBFS), then silence for the rest."""
    n = int(_TONE_S * rate)
    tone = 0.05 * np.sin(2 * np.pi * 1000 * np.arange(n) / rate) * _ramp(n, rate)
    bursts = [np.stack([tone * 10 ** (-6 * k / 20)] * 2, axis=1) if k < answer else np.zeros((n, 2)) for k in range(5)]
    return _sequence(bursts, rate)


_GENERATORS = {"antiphase": _antiphase, "huggins": _huggins, "tones": _tones}


def session_trials(environment: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """A session's environment pages: every check's stimuli in a seeded order, check after check."""
    trials = []
    for index, check in enumerate(environment):
        stimuli = list(check["stimuli"])
        random.Random(f"{seed}|environment|{index}").shuffle(stimuli)
        trials += [
            {
                "item": None,
                "conditions": ["check"],
                "file": s["file"],
                "duration": s["duration"],
                "answer": s["answer"],
                "check": check["check"],
                "index": index,
            }
            for s in stimuli
        ]
    return trials


def prompt(trial: dict[str, Any]) -> dict[str, Any]:
    """What an environment page asks: the question and its answers (the values the page sends back)."""
    _, _, question, labels = CHECKS[trial["check"]]
    first = 1 if len(labels) == 3 else 0
    return {
        "labels": ["Play"],
        "question": question,
        "options": [{"value": first + k, "label": label} for k, label in enumerate(labels)],
    }


def answer_of(trial: dict[str, Any], response: dict[str, Any]) -> int | None:
    value = response.get("choice")
    valid = [option["value"] for option in prompt(trial)["options"]]
    return value if not isinstance(value, bool) and value in valid else None


def score(environment: list[dict[str, Any]], answers: list[dict[str, Any]]) -> tuple[bool, list[str]]:
    """(passed, reasons): every check needs `pass` of its pages answered right."""
    reasons = []
    for index, check in enumerate(environment):
        right = sum(a["ok"] for a in answers if a["index"] == index)
        if right < check["pass"]:
            reasons.append(
                f"{check['check']} check: {right} of {check['trials']} answered right ({check['pass']} needed)"
            )
    return not reasons, reasons
