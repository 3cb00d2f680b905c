"""ITU-T P.808's quality controls for category-rating tests: gold and trapping clips, and per-session rejection rules.

- Gold clips are ordinary stimuli whose answer is obvious (the clean reference is Excellent, a
  heavily degraded one Bad): `gold: [{item, condition, accept: [4, 5]}]`.
- Trapping clips are audio that asks for a given answer ("please select Poor"), prepared with the
  test: `trapping: [{path, answer}]`; `synthesize_trap` speaks one with Debian's flite.
- A session gets `gold_per_session` and `trapping_per_session` of them (default one each) at seeded
  positions among its trials. Their answers go to the session's checks, never into the responses.
- When the session finishes, `session_rejections` applies the rules (`rejection:`): more wrong gold
  answers than `gold` allows (default 0), more wrong trapping answers than `trapping` allows
  (default 0), and (`constant: true`) every rating of the session the same. Each becomes a
  recorded rejection with its reason (crowd.record_rejection).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from statistics import pvariance
from typing import Any

from ._check import Checker

__all__ = [
    "CHECK_KINDS",
    "read_gold",
    "read_trapping",
    "read_rejection",
    "place_checks",
    "prepare_traps",
    "session_rejections",
    "synthesize_trap",
    "TRAP_FOLDER",
]

CHECK_KINDS = ("gold", "trap")
TRAP_FOLDER = "trapping"
MIN_CONSTANT = 4  # ratings a session needs before "all the same" says anything


def read_gold(check: Checker, value: Any, items: tuple, conditions: tuple, scale) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.fail("gold", "a list of {item, condition, accept: [answers]}")
    item_ids, names = {i.id for i in items}, {c.name for c in conditions}
    found = []
    for index, entry in enumerate(value):
        key = f"gold[{index}]"
        entry = check.mapping(entry, key, {"item", "condition", "accept"}, required=("item", "condition", "accept"))
        if entry["item"] not in item_ids:
            check.fail(f"{key}.item", f"{entry['item']!r} is not one of the test's items")
        if entry["condition"] not in names:
            check.fail(f"{key}.condition", f"{entry['condition']!r} is not one of the test's conditions")
        accept = entry["accept"]
        if not isinstance(accept, list) or not accept or not all(scale.valid(a) for a in accept):
            check.fail(
                f"{key}.accept", f"a list of answers on the scale ({', '.join(f'{v:g}' for v, _ in scale.points)})"
            )
        found.append({"item": entry["item"], "condition": entry["condition"], "accept": [float(a) for a in accept]})
    return found


def read_trapping(check: Checker, value: Any, base: Path, scale) -> list[dict[str, Any]]:
    import soundfile as sf

    if value is None:
        return []
    if not isinstance(value, list):
        check.fail("trapping", "a list of {path, answer}: audio that asks the listener for `answer`")
    found = []
    for index, entry in enumerate(value):
        key = f"trapping[{index}]"
        entry = check.mapping(entry, key, {"path", "answer"}, required=("path", "answer"))
        path = check.confine(base / check.text(entry["path"], f"{key}.path", required=True), f"{key}.path")
        if not path.is_file():
            check.fail(f"{key}.path", f"{path}: no such file")
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as err:
            check.fail(f"{key}.path", f"{path}: not readable as audio ({err})")
        if not scale.valid(entry["answer"]):
            check.fail(f"{key}.answer", f"{entry['answer']!r} is not an answer on the scale")
        found.append(
            {
                "path": str(path.resolve()),
                "file": f"{TRAP_FOLDER}/trap-{index:02d}.wav",
                "duration": round(info.frames / info.samplerate, 6),
                "accept": [float(entry["answer"])],
            }
        )
    return found


def read_rejection(check: Checker, value: Any) -> dict[str, Any]:
    value = check.mapping({} if value is None else value, "rejection", {"gold", "trapping", "constant"})
    return {
        "gold": check.integer(value.get("gold", 0), "rejection.gold", 0, 100),
        "trapping": check.integer(value.get("trapping", 0), "rejection.trapping", 0, 100),
        "constant": check.boolean(value.get("constant", True), "rejection.constant"),
    }


def place_checks(trials: list[dict], checks: list[dict], seed: int) -> list[dict]:
    """`checks` (gold and trapping trials) inserted at seeded positions, never first (the listener warms up)."""
    rng = random.Random(f"{seed}|checks")
    placed = list(trials)
    for check in checks:
        placed.insert(rng.randint(1, max(1, len(placed))), check)
    return placed


def prepare_traps(trapping: list[dict], out_dir: Path, sample_rate: int, target_lufs: float) -> None:
    """Each trapping clip resampled to the test's rate, mono, at the test's loudness, as 16-bit WAV."""
    import soundfile as sf

    from ..audio import load, loudness, resample, to_mono

    for trap in trapping:
        audio = resample(to_mono(load(trap["path"], id="trap")), sample_rate)
        gain = 10 ** ((target_lufs - loudness(audio)) / 20)
        samples = (audio.samples[0] * gain).clip(-0.999, 0.999)
        path = out_dir / trap["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), samples, sample_rate, subtype="PCM_16")


def session_rejections(options: dict[str, Any], checks: dict[str, Any], scores: list[float]) -> list[tuple[str, str]]:
    """(rule, reason) for each P.808 rule the finished session breaks."""
    rules = options.get("rejection") or {}
    found = []
    for kind, rule, what in (("gold", "gold", "gold clip"), ("trap", "trapping", "trapping clip")):
        wrong = [a for a in checks.get(kind, []) if not a["ok"]]
        if len(wrong) > rules.get(rule, 0):
            shown = ", ".join(f"{a['answer']!r} (expected {' or '.join(f'{v:g}' for v in a['accept'])})" for a in wrong)
            found.append((rule, f"{len(wrong)} {what}(s) answered wrongly: {shown}"))
    if rules.get("constant") and len(scores) >= MIN_CONSTANT and pvariance(scores) == 0:
        found.append(("constant", f"every one of the session's {len(scores)} ratings is {scores[0]:g}"))
    return found


def synthesize_trap(text: str, path: str | Path, voice: str = "slt") -> Path:
    """Speak `text` into a WAV file with Debian's flite (apt-get install flite); ConfigError without it, for an
    empty text or for a voice flite lacks (flite itself would silently speak with its default voice)."""
    from ..errors import ConfigError

    flite = shutil.which("flite")
    if flite is None:
        raise ConfigError("trapping clips are spoken with flite: apt-get install -y flite (or record your own)")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a trapping clip needs words to speak, e.g. 'Please select Poor'")
    voices = subprocess.run([flite, "-lv"], capture_output=True, text=True).stdout.split(":", 1)[-1].split()
    if voice not in voices:
        raise ConfigError(f"flite has no voice {voice!r}; its voices: {', '.join(voices)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        spoken = Path(folder) / "trap.wav"
        done = subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(spoken)], capture_output=True, text=True)
        if done.returncode != 0 or not spoken.is_file():
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise ConfigError(f"flite could not speak the trapping clip: {reason}")
        shutil.copyfile(spoken, path)
    return path
