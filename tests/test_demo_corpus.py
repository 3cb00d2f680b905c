"""The bundled demo corpus (data/demo): manifest, audio, size and licence notes hold together."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from evalkit.audio import load

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"
SCRIPT = DEMO.parent.parent / "scripts" / "build_demo_corpus.py"
KEYS = {"id", "path", "speaker", "sex", "duration", "text", "source", "licence"}
MAX_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = (DEMO / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_manifest_rows_are_complete(rows):
    for row in rows:
        assert KEYS <= set(row), f"{row.get('id')}: missing {KEYS - set(row)}"
        assert row["sex"] in ("female", "male")
        assert row["text"] is None or (isinstance(row["text"], str) and row["text"])
    assert len({row["id"] for row in rows}) == len(rows), "duplicate ids"


def test_enough_items_speakers_and_both_sexes(rows):
    assert len(rows) >= 12
    assert len({row["speaker"] for row in rows}) >= 4
    assert {row["sex"] for row in rows} == {"female", "male"}
    # Every speaker has one sex.
    sexes = {}
    for row in rows:
        assert sexes.setdefault(row["speaker"], row["sex"]) == row["sex"], row["speaker"]


def test_every_file_loads_at_16k_mono_with_its_duration(rows):
    for row in rows:
        path = DEMO / row["path"]
        assert path.resolve().is_relative_to(DEMO.resolve()), f"{row['id']}: path leaves the corpus folder"
        audio = load(path)
        assert (audio.sample_rate, audio.channels) == (16000, 1), row["id"]
        assert audio.duration == pytest.approx(row["duration"], abs=1e-3), row["id"]
        assert 2.0 <= audio.duration <= 20.0, row["id"]
        if "sha256" in row:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"], row["id"]


def test_some_items_are_long_enough_for_mushra(rows):
    assert sum(row["duration"] >= 9.0 for row in rows) >= 3


def test_total_size_at_most_10_mb():
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size <= MAX_BYTES, f"{size / 1e6:.1f} MB"


def test_licence_file_names_every_item_and_licence(rows):
    text = (DEMO / "LICENSE.md").read_text(encoding="utf-8")
    for row in rows:
        assert row["id"] in text and row["licence"] in text, row["id"]
    assert "Carnegie Mellon University" in text  # the CMU ARCTIC notice must travel with the clips


def test_no_stray_audio(rows):
    listed = {row["path"] for row in rows}
    on_disk = {p.relative_to(DEMO).as_posix() for p in DEMO.rglob("*") if p.suffix in (".wav", ".flac")}
    assert on_disk == listed


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None or not Path("/usr/share/asterisk/sounds/it_IT_m_Carlo").is_dir(),
    reason="needs ffmpeg and the Debian asterisk-core-sounds-*-g722 packages",
)
def test_asterisk_items_rebuild_byte_identical(rows, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("build_demo_corpus", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # dataclasses look their module up there
    spec.loader.exec_module(script)
    try:
        items = script.asterisk_items()
    except SystemExit as err:
        pytest.skip(str(err))
    by_id = {row["id"]: row for row in rows}
    for item in items:
        assert script.write_item(item, tmp_path)["sha256"] == by_id[item.id]["sha256"], item.id
