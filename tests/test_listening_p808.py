"""P.808 trapping clips spoken by flite: the clip itself, its use in an ACR test, and the one-line errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from listening_helpers import take_all
from test_listening_types import condition_names, create, definition, sources  # noqa: F401

from evalkit.errors import ConfigError
from evalkit.listening import p808
from evalkit.listening.analysis import load_test

needs_flite = pytest.mark.skipif(
    shutil.which("flite") is None, reason="flite is not installed (scripts/install_system_deps.sh installs it)"
)


@needs_flite
def test_synthesize_trap_speaks_the_text_into_a_wav(tmp_path):
    poor = p808.synthesize_trap("This is a trap. Please select Poor.", tmp_path / "traps" / "poor.wav")
    short = p808.synthesize_trap("Poor.", tmp_path / "short.wav", voice="kal")
    audio, rate = sf.read(poor)
    assert poor == tmp_path / "traps" / "poor.wav" and rate in (8000, 16000) and audio.ndim == 1
    assert 1.0 < len(audio) / rate < 6.0  # a sentence, not silence or a crash report
    assert np.sqrt(np.mean(audio**2)) > 0.01
    voiced = np.abs(audio) > 0.05
    assert 0.2 < voiced.mean() < 0.9  # speech: loud parts and pauses
    assert sf.info(short).duration < len(audio) / rate  # fewer words, shorter clip
    assert sf.info(short).samplerate == 8000  # kal is flite's 8 kHz voice: the voice asked for was used


@needs_flite
@pytest.mark.parametrize(
    ("text", "voice", "message"),
    [
        ("Please select Poor.", "nosuch", "flite has no voice 'nosuch'; its voices: "),
        ("   ", "slt", "a trapping clip needs words"),
    ],
)
def test_synthesize_trap_refuses_what_flite_would_silently_get_wrong(tmp_path, text, voice, message):
    with pytest.raises(ConfigError, match=message) as info:
        p808.synthesize_trap(text, tmp_path / "trap.wav", voice=voice)
    assert "\n" not in str(info.value) and not (tmp_path / "trap.wav").exists()


def test_synthesize_trap_without_flite_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(p808.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install -y flite"):
        p808.synthesize_trap("Please select Poor.", tmp_path / "trap.wav")


@needs_flite
def test_a_spoken_trap_in_an_acr_test_rejects_the_listener_who_ignores_it(engine, sources, tmp_path):  # noqa: F811
    trap = p808.synthesize_trap("This is an attention check. Please select Poor.", tmp_path / "trap.wav")
    data = definition("acr", trapping=[{"path": str(trap), "answer": 2}], rejection={"trapping": 0})
    spec = create(engine, sources, tmp_path, data)
    prepared = tmp_path / "stimuli"
    files = list(prepared.rglob("trapping/trap-00.wav"))
    assert len(files) == 1 and sf.info(files[0]).samplerate == spec.sample_rate == 16000
    names = condition_names(engine)

    def listener(obeys):
        def answer(entry, trial):
            if entry.get("kind") == "trap":
                return {"choice": 2 if obeys else 5}
            return {"choice": {"reference": 5, "noisy": 4, "noisier": 2}[names[entry["conditions"][0]]]}

        return answer

    careful = take_all(engine, "acr-test", listener(True))
    careless = take_all(engine, "acr-test", listener(False))
    loaded = load_test(engine, "acr-test")
    assert set(loaded.rejected) == {careless} and careful in set(loaded.kept["participant"])
    assert "trapping: 1 trapping clip(s) answered wrongly: 5 (expected 2)" in loaded.rejected[careless]
