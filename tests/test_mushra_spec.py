"""MUSHRA test definitions: every validation rule names the file and the key; the demo loads."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from evalkit.errors import ConfigError
from evalkit.mushra.spec import AUTOMATIC, load_spec, spec_from_dict

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def folder(tmp_path):
    """Six 2 s items at 48 kHz (one 14 s) and a pre-rendered copy of each."""
    rng = np.random.default_rng(0)
    for name, seconds in [("a", 2), ("b", 2), ("c", 2), ("d", 2), ("e", 2), ("long", 14)]:
        x = 0.1 * rng.standard_normal(int(seconds * 48000))
        sf.write(tmp_path / f"{name}.wav", x, 48000, subtype="PCM_16")
        sf.write(tmp_path / f"{name}-r.wav", x, 48000, subtype="PCM_16")
    return tmp_path


def base(**changes):
    data = {"name": "t1", "items": [{"id": i, "path": f"{i}.wav"} for i in "abcde"], "conditions": ["opus-6k"]}
    data.update(changes)
    return data


def load(folder, data):
    return spec_from_dict(data, base=folder, source="t1.yaml")


def fails(folder, data, *fragments):
    with pytest.raises(ConfigError) as info:
        load(folder, data)
    message = str(info.value)
    assert message.startswith("t1.yaml: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_minimal_definition_adds_reference_and_both_anchors(folder):
    spec = load(folder, base())
    assert [c.name for c in spec.conditions] == [*AUTOMATIC, "opus-6k"]
    assert [c.kind for c in spec.conditions] == ["reference", "anchor", "anchor", "codec"]
    assert spec.training == ("a",) and spec.sample_rate == 48000 and spec.warnings == ()
    assert spec.to_dict()["conditions"][3]["card"] == "opus-6k"


def test_demo_definition_loads():
    spec = load_spec(ROOT / "tests_mushra" / "demo.yaml")
    assert len(spec.items) >= 5 and all(4.5 < item.duration <= 12 for item in spec.items)
    assert [c.name for c in spec.conditions][3:] == [
        "opus-6k",
        "opus-16k-wb",
        "amr-wb-12k65",
        "codec2-3200",
        "g722-64k",
    ]
    assert spec.training and spec.questionnaire and spec.seed is not None
    assert len(spec.warnings) == 1 and "7 kHz anchor" in spec.warnings[0]  # the demo corpus is 16 kHz speech


def test_at_most_twelve_signals_per_trial(folder):
    nine = [
        "opus-6k",
        "opus-12k",
        "opus-16k-wb",
        "opus-16k-cbr",
        "opus-24k-fec",
        "opus-32k-celt",
        "opus-64k",
        "g722-64k",
        "g711-alaw",
    ]
    assert len(load(folder, base(conditions=nine)).conditions) == 12
    fails(folder, base(conditions=nine + ["g711-mulaw"]), "conditions:", "13 signals", "at most 12")


def test_long_excerpt_warns_and_cut_excerpt_does_not(folder):
    items = [{"id": i, "path": f"{i}.wav"} for i in "abcd"] + [{"id": "long", "path": "long.wav"}]
    warnings = load(folder, base(items=items)).warnings
    assert len(warnings) == 1 and "items[4]" in warnings[0] and "14.0 s" in warnings[0]
    items[4].update(start=1.0, end=11.0)
    spec = load(folder, base(items=items))
    assert spec.warnings == () and spec.items[4].duration == pytest.approx(10.0)


def test_top_level_excerpt_applies_to_every_item(folder):
    spec = load(folder, base(excerpt={"start": 0.25, "end": 1.75, "fade_ms": 5}))
    assert {(item.start, item.end, item.duration) for item in spec.items} == {(0.25, 1.75, 1.5)}
    assert spec.fade_ms == 5.0


def test_fewer_than_five_items_warns(folder):
    spec = load(folder, base(items=[{"id": "a", "path": "a.wav"}]))
    assert any("1 items" in w and "at least 5" in w for w in spec.warnings)


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"colour": 1}, ["colour:", "unknown key"]),
        ({"name": "bad name!"}, ["name:"]),
        ({"items": []}, ["items:", "non-empty"]),
        ({"items": [{"id": "a"}]}, ["items[0]", "no 'path'", "manifest"]),
        ({"items": [{"id": "a", "path": "missing.wav"}]}, ["items[0].path", "no such file"]),
        ({"items": [{"id": "a", "path": "a.wav"}, {"id": "a", "path": "b.wav"}]}, ["items[1]", "listed twice"]),
        ({"items": [{"id": "a", "path": "a.wav", "end": 5.0}]}, ["items[0].end", "past the end"]),
        ({"items": [{"id": "a", "path": "a.wav", "start": 1.0, "end": 1.2}]}, ["items[0]", "shorter than 0.5 s"]),
        ({"items": [{"id": "a", "path": "a.wav", "start": -1}]}, ["items[0].start", "outside"]),
        ({"items": [{"id": "a", "path": "a.wav", "speed": 2}]}, ["items[0].speed", "unknown key"]),
        ({"conditions": []}, ["conditions:", "non-empty"]),
        ({"conditions": ["opus-7k"]}, ["conditions[0].card", "unknown codec card 'opus-7k'"]),
        ({"conditions": ["opus-6k", "opus-6k"]}, ["conditions[1]", "listed twice"]),
        ({"conditions": ["anchor-lp35"]}, ["conditions[0]", "added to every test automatically"]),
        ({"conditions": [{"name": "reference", "card": "opus-6k"}]}, ["conditions[0]", "automatically"]),
        ({"conditions": [{"name": "x", "card": "opus-6k", "files": "{item}.wav"}]}, ["conditions[0]", "either"]),
        ({"conditions": [{"name": "x", "files": "r.wav"}]}, ["conditions[0].files", "{item}"]),
        ({"conditions": [{"name": "x", "files": {"a": "a-r.wav"}}]}, ["conditions[0].files.b", "missing"]),
        ({"conditions": [{"name": "x", "files": "{item}-nope.wav"}]}, ["conditions[0].files.a", "no such file"]),
        ({"sample_rate": 44100.5}, ["sample_rate:", "whole number"]),
        ({"sample_rate": 4000}, ["sample_rate:", "outside"]),
        ({"format": "mp3"}, ["format:", "wav, flac"]),
        ({"loudness": {"target_lufs": -3}}, ["loudness.target_lufs", "outside"]),
        ({"loudness": {"anchors": "loud"}}, ["loudness.anchors"]),
        ({"randomization": {"seed": "lucky"}}, ["randomization.seed", "whole number"]),
        ({"randomization": {"trial_order": "alphabetical"}}, ["randomization.trial_order"]),
        ({"training": {"items": ["zzz"]}}, ["training.items[0]", "not one of the test's items"]),
        ({"training": {"items": []}}, ["training.items", "non-empty"]),
        ({"looping": "yes"}, ["looping:", "true or false"]),
        (
            {"questionnaire": [{"id": "q", "text": "Q?", "type": "choice", "choices": ["only"]}]},
            ["questionnaire[0].choices", "at least two"],
        ),
        ({"questionnaire": [{"id": "q", "text": "Q?", "type": "essay"}]}, ["questionnaire[0].type"]),
        (
            {"questionnaire": [{"id": "q", "text": "Q?"}, {"id": "q", "text": "Again?"}]},
            ["questionnaire[1].id", "twice"],
        ),
        ({"questionnaire": [{"id": "q", "text": "Q?", "min": 1}]}, ["questionnaire[0]", "only number questions"]),
        (
            {"questionnaire": [{"id": "q", "text": "Q?", "type": "number", "min": 5, "max": 1.5}]},
            ["questionnaire[0].max", "below min"],
        ),
        (
            {"questionnaire": [{"id": "q", "text": "Q?", "type": "number", "max": "ten"}]},
            ["questionnaire[0].max", "number"],
        ),
        ({"min_play_seconds": -1}, ["min_play_seconds", "outside"]),
        ({"consent": ""}, ["consent:", "non-empty"]),
    ],
)
def test_invalid_definitions_name_file_and_key(folder, change, fragments):
    fails(folder, base(**change), *fragments)


def test_manifest_items_and_unknown_manifest_id(folder):
    manifest = folder / "m.jsonl"
    manifest.write_text("".join(f'{{"id": "{i}", "path": "{i}.wav"}}\n' for i in "abcde"))
    spec = load(folder, base(manifest="m.jsonl", items=list("abcde")))
    assert spec.items[0].path == (folder / "a.wav").resolve()
    fails(folder, base(manifest="m.jsonl", items=["a", "zzz"]), "items[1].id", "not in the manifest")


def test_prerendered_files_by_pattern_and_mapping(folder):
    by_pattern = load(folder, base(conditions=[{"name": "mine", "files": "{item}-r.wav"}]))
    mapping = {i: f"{i}-r.wav" for i in "abcde"}
    by_mapping = load(folder, base(conditions=[{"name": "mine", "files": mapping}]))
    assert by_pattern.conditions[3] == by_mapping.conditions[3]
    assert by_pattern.conditions[3].kind == "file"


def test_a_folder_of_other_names_gets_the_pattern_to_give(folder):
    renders = folder / "renders"
    renders.mkdir()
    for name in "abcde":
        (renders / f"{name}_6k.wav").write_bytes((folder / f"{name}-r.wav").read_bytes())
    fails(folder, base(conditions=[{"name": "mine", "files": "renders"}]), "named like 'renders/{item}_6k.wav'")
    assert load(folder, base(conditions=[{"name": "mine", "files": "renders/{item}_6k.wav"}])).conditions[3].files


def test_yaml_file_errors_name_the_file(folder):
    path = folder / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:2:1: cannot read test definition: invalid YAML"):
        load_spec(path)
    path.write_text(yaml.safe_dump({**base(), "items": [{"id": "a", "path": "nope.wav"}]}))
    line = (
        yaml.safe_dump({**base(), "items": [{"id": "a", "path": "nope.wav"}]}).splitlines().index("  path: nope.wav")
        + 1
    )
    with pytest.raises(ConfigError, match=rf"broken.yaml:{line}: items\[0\].path: .*nope.wav: no such file"):
        load_spec(path)


@pytest.mark.parametrize(
    "bounds, good, bad, says",
    [
        ({"min": 16, "max": 110}, ["16", 42, 110, "37.5"], [7, 111, "-1"], "from 16 to 110"),
        ({"min": 0.5, "max": 2.25}, ["0.5", 1, 2.25, "1e0"], [0.49, 2.3], "from 0.5 to 2.25"),
        ({"min": 0}, [0, "1e6"], [-0.001], "of at least 0"),
        ({"max": 10.5}, [-5, 10.5], [11], "of at most 10.5"),
        ({}, [-1e9, "3.14"], [], ""),
    ],
)
def test_number_answers_with_any_bounds(bounds, good, bad, says):
    from evalkit.mushra.spec import Question

    question = Question("q", "How many?", "number", **bounds)
    for value in good:
        assert question.answer(value) == float(value)
    for value in bad:
        with pytest.raises(ValueError, match=f"How many\\?: enter a number {says}"):
            question.answer(value)
    for value in ("twelve", "nan", "inf", True, [1], {"a": 1}):
        with pytest.raises(ValueError, match="enter a number"):
            question.answer(value)


def test_question_answers_are_checked():
    from evalkit.mushra.spec import Question

    kind = Question("kind", "Kind", "choice", ("a", "b"))
    with pytest.raises(ValueError, match="choose one of a, b"):
        kind.answer("c")
    assert Question("c", "Comments", required=False).answer("  ") is None
    assert Question("n", "Age", "number", required=False, min=16).answer(None) is None
    assert Question("c", "Comments").answer("  fine  ") == "fine"
    assert len(Question("c", "Comments").answer("x" * 9000)) == 5000
    with pytest.raises(ValueError, match="enter text"):
        Question("c", "Comments").answer(["not", "text"])
    with pytest.raises(ValueError, match="please answer"):
        kind.answer(None)


def test_the_demo_questionnaire_loads_with_its_bounds():
    spec = load_spec(Path(__file__).resolve().parent.parent / "tests_mushra" / "demo.yaml")
    age = next(q for q in spec.questionnaire if q.id == "age")
    assert (age.type, age.min, age.max, age.required) == ("number", 16, 110, False)
    assert spec.min_play_seconds == 1.0
    assert {q.type for q in spec.questionnaire} == {"number", "choice", "text"}


def test_hash_changes_with_content(folder):
    one, two = load(folder, base()), load(folder, copy.deepcopy(base(title="Other")))
    assert one.sha256 != two.sha256 and one.sha256 == load(folder, base()).sha256


def test_an_empty_definition_file_is_called_empty(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="empty.yaml: the file is empty; a test definition is a mapping"):
        load_spec(empty)
