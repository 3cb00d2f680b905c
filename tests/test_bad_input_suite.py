"""Bad input of every kind users write: experiments, manifests, cards, training configs, test
definitions and audio files. Each case asserts its exact outcome: accepted, one error line that
names the file, line or key, or failed rows with their reason while every other row is kept."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from alembic import command

import evalkit
from evalkit.audio import Audio, save
from evalkit.cli import main
from evalkit.config import read_yaml
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.errors import ConfigError, EvalkitError
from evalkit.experiment import load_experiment
from evalkit.store import connect
from evalkit.tasks import COST_METRICS

GOOD = load_dataset(DEMO_MANIFEST)[:2]


def one_line_error(capsys, argv: list[str], *fragments: str) -> str:
    """Run the command; it must fail with exactly one stderr line, no traceback, naming `fragments`."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("evalkit: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def good_manifest(folder: Path) -> Path:
    """Two real speech items, copied into `folder` so their paths lie inside it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for item in GOOD:
        shutil.copyfile(item.path, folder / item.path.name)
        lines.append(json.dumps({"id": item.id, "path": item.path.name}))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def experiment_text(tmp_path: Path, body: str) -> Path:
    """An experiment file whose body is `body` after the common settings (it may override them)."""
    good_manifest(tmp_path / "data")
    common = {
        "name": "t",
        "dataset": "data/manifest.jsonl",
        "codecs": ["reference"],
        "metrics": ["si_sdr"],
        "workers": 0,
        "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "cache": "cache",
    }
    given = yaml.safe_load(body) if body.strip() else {}
    keys = set(given) if isinstance(given, dict) else set()
    lines = [f"{k}: {json.dumps(v)}" for k, v in common.items() if k not in keys]  # JSON is YAML
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(body).strip() + "\n" + "\n".join(lines) + "\n")
    return path


# -- experiments ------------------------------------------------------------------------------

EXPERIMENT_CASES = [
    ("name: [a, b]", "name", "non-empty string, got a list"),
    ("name: 12", "name", "got 12"),
    ("name: ' t '", "name", "surrounding spaces"),
    ("codecs: g722-64k", "codecs", "write [g722-64k] for one"),
    ("codecs: []", "codecs", "non-empty list"),
    ("codecs: [42]", "codecs[0]", "got 42"),
    ("codecs: [nope]", "codecs[0]", "unknown codec 'nope'"),
    ("codecs: [g722-64k, g722-64k]", "codecs", "listed twice"),
    ("codecs: [{card: g722-64k, colour: red}]", "codecs[0].colour", "unknown key"),
    ("codecs: [{card: opus-12k, sweep: {bitrate: -6000}}]", "codecs[0].sweep.bitrate", "non-empty list"),
    ("codecs: [{card: opus-12k, sweep: {bitrate: [12000, -6000]}}]", "codecs[0].sweep", "bitrate=-6000"),
    ("codecs: [{card: opus-12k, sweep: {bitrat: [6000]}}]", "codecs[0].sweep", "bitrat"),
    ("codecs: [{card: opus-12k, sweep: {bitrate: [{a: 1}]}}]", "codecs[0].sweep.bitrate[0]", "plain value"),
    ("codecs: [{card: opus-12k, sweep: {bitrate: [6000, 6000]}}]", "codecs[0].sweep.bitrate", "twice"),
    (
        f"codecs: [{{card: opus-12k, sweep: {{bitrate: {list(range(6000, 46000, 1000))}, "
        f"complexity: {list(range(26))}}}}}]",
        "codecs[0].sweep",
        "makes 1040 codec conditions, more than 1000",
    ),
    ("codecs: [{name: m, decoded: 5}]", "codecs[0].decoded", "got 5"),
    ("codecs: [{name: m, decoded: x, bitrate_kbps: '6'}]", "codecs[0].bitrate_kbps", "must be a number"),
    ("metrics: stoi", "metrics", "write [stoi] for one"),
    ("metrics: [si_sdr, pesq_xx]", "metrics[1]", "unknown metric 'pesq_xx'"),
    ("metrics: [si_sdr, si_sdr]", "metrics", "twice"),
    ("metrics: [3]", "metrics[0]", "got 3"),
    ("downmix: 'no'", "downmix", "true or false, got 'no'"),
    ("downmix: 1", "downmix", "true or false, got 1"),
    ("allow_outside: 'yes'", "allow_outside", "true or false"),
    ("limit: 0", "limit", "outside 1"),
    ("workers: -1", "workers", "outside 0"),
    ("workers: 1.5", "workers", "whole number"),
    ("task_timeout: 0", "task_timeout", "above 0"),
    ("database: notadb://x", "database", "not a database URL"),
    ("database: 42", "database", "got 42"),
    ("cache: [a]", "cache", "got a list"),
    ("cards: [no-such-folder]", "cards", "does not exist"),
    ("alignment: {max_lag_ms: -1}", "alignment.max_lag_ms", "outside the range"),
    ("alignment: loose", "alignment", "mapping"),
    ("metric: [stoi]", "metric", "unknown key"),
    # a newcomer's typos and guesses get the name they meant, or what to write instead
    ("downmx: true", "downmx", "unknown key (did you mean 'downmix'?)"),
    ("codecs: [opus12k]", "codecs[0]", "unknown codec 'opus12k' (did you mean 'opus-12k'?)"),
    ("metrics: [pesq]", "metrics[0]", "unknown metric 'pesq' (did you mean 'pesq_wb'?)"),
    ("metrics: [{name: stoi, extended: true}]", "metrics[0]", "metrics take no options: list names only"),
    ("metrics: {stoi: {extended: true}}", "metrics", "metrics take no options"),
]


@pytest.mark.parametrize("body, key, message", EXPERIMENT_CASES)
def test_experiment_mistakes_are_one_line_naming_file_line_and_key(tmp_path, capsys, body, key, message):
    path = experiment_text(tmp_path, body)
    line = one_line_error(capsys, ["run", str(path)], f"exp.yaml:1: {key}: " if key else "exp.yaml:1", message)
    assert "exp.yaml:1" in line
    assert not (tmp_path / "db.sqlite").exists()  # checked before any work: no database, no run


def test_an_unknown_experiment_key_offers_only_the_keys_people_write(tmp_path, capsys):
    line = one_line_error(capsys, ["run", str(experiment_text(tmp_path, "downmx: true"))], "allowed here:")
    assert "task_timeout" in line and "resolved" not in line  # evalkit writes `resolved` into stored copies


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("name: t\nname: u\n", ["exp.yaml:2: name: given twice"]),
        ("name: t\ncodecs: [reference\nmetrics: [si_sdr]\n", ["exp.yaml:3:", "invalid YAML", "starts at line 2"]),
        ("- name: t\n", ["exp.yaml:1:", "an experiment is a mapping"]),
        ("", ["exp.yaml", "an experiment is a mapping", "got None"]),
        (b"name: \xff\xfe\n", ["exp.yaml", "not UTF-8"]),
    ],
)
def test_unreadable_experiments_are_one_line(tmp_path, capsys, text, fragments):
    path = tmp_path / "exp.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    one_line_error(capsys, ["run", str(path)], *fragments)


@pytest.mark.parametrize("cache", ["afile", "afile/below"])
def test_a_cache_folder_that_cannot_be_written_stops_the_run_before_it_starts(tmp_path, capsys, cache):
    (tmp_path / "afile").write_text("not a folder")
    path = experiment_text(tmp_path, f"cache: {cache}")
    one_line_error(capsys, ["run", str(path)], f"cache: {tmp_path / cache} cannot hold the decoded audio")
    assert not (tmp_path / "db.sqlite").exists()  # no run left behind, no row failed one by one


def test_a_missing_experiment_file_is_one_line(tmp_path, capsys):
    one_line_error(capsys, ["run", str(tmp_path / "nope.yaml")], "nope.yaml: no such experiment file")


def test_error_lines_point_at_the_line_of_the_key(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\ndataset: d.jsonl\nmetrics:\n  - si_sdr\n  - nope\ncodecs: [reference]\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:5: metrics\[1\]: unknown metric 'nope'"):
        load_experiment(path)


# -- manifests --------------------------------------------------------------------------------


def manifest(tmp_path: Path, *lines: str, name: str = "m.jsonl") -> Path:
    good_manifest(tmp_path)
    path = tmp_path / name
    first = json.dumps({"id": GOOD[0].id, "path": GOOD[0].path.name})
    path.write_text("\n".join([first, *lines]) + "\n")
    return path


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("[1,2]", 'expected a JSON object {"id", "path"}, got a list'),
        ('{"id": "a", "path": 12}', "'path' must be the audio file's path (a non-empty string), got 12"),
        ("{id: a}", "not valid JSON"),
        ('{"path": "a.wav"}', "'id' must be a non-empty string"),
        ('{"id": [1], "path": "a.wav"}', "'id' must be a non-empty string (or a whole number), got [1]"),
        ('{"id": true, "path": "a.wav"}', "got true"),
        ('{"id": "b", "path": "a.wav", "speaker": 5}', "'speaker' must be a string or null"),
        ('{"id": "b", "path": "../../etc/passwd"}', "'../../etc/passwd' lies outside the folder"),
        ('{"id": "b", "path": "/etc/passwd"}', "'/etc/passwd' lies outside the folder"),
        ('{"id": "../b", "path": "a.wav"}', "has '..' parts"),
        ('{"id": "/b", "path": "a.wav"}', "starts with '/'"),
    ],
)
def test_manifest_lines_are_checked_naming_file_and_line(tmp_path, line, fragment):
    path = manifest(tmp_path, line)
    with pytest.raises(ConfigError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ") and fragment in message and "\n" not in message


def test_a_manifest_and_scp_saved_by_a_windows_editor_load(tmp_path):
    path = good_manifest(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))  # a byte-order mark, CRLF
    scp = tmp_path / "wav.scp"
    scp.write_bytes(b"\xef\xbb\xbf" + "".join(f"{i.id} {i.path.name}\r\n" for i in GOOD).encode())
    for dataset in (path, scp):
        assert [item.id for item in load_dataset(dataset)] == [item.id for item in GOOD]


def test_allow_outside_lets_a_manifest_point_elsewhere(tmp_path):
    path = manifest(tmp_path, json.dumps({"id": "x", "path": str(GOOD[1].path)}))
    with pytest.raises(ConfigError, match="allow_outside: true"):
        load_dataset(path)
    assert [item.path for item in load_dataset(path, allow_outside=True)][1] == GOOD[1].path


def linked_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset folder holding one real file, and a file of the same audio outside it."""
    folder, outside = tmp_path / "data", tmp_path / "elsewhere"
    good_manifest(folder)
    outside.mkdir()
    shutil.copyfile(GOOD[1].path, outside / "secret.wav")
    return folder, outside


@pytest.mark.parametrize("kind", ["manifest", "scp", "folder", "linked folder"])
def test_a_symbolic_link_out_of_the_dataset_folder_is_refused(tmp_path, kind):
    folder, outside = linked_dataset(tmp_path)
    if kind == "linked folder":  # a linked folder on the path: the name itself stays inside
        (folder / "sub").symlink_to(outside, target_is_directory=True)
        name = "sub/secret.wav"
    else:
        (folder / "x.wav").symlink_to(outside / "secret.wav")
        name = "x.wav"
    source = {
        "manifest": folder / "l.jsonl",
        "scp": folder / "wav.scp",
        "folder": folder,
        "linked folder": folder / "l.jsonl",
    }[kind]
    if source.suffix == ".jsonl":
        source.write_text(json.dumps({"id": "x", "path": name}) + "\n")
    elif source.suffix == ".scp":
        source.write_text(f"x {name}\n")
    with pytest.raises(ConfigError) as info:
        load_dataset(source)
    message = str(info.value)
    assert "is a symbolic link to" in message and "outside the folder" in message and "\n" not in message
    assert message.startswith(f"{source}:1: " if source.is_file() else str(folder / name))
    assert [item.path.resolve() for item in load_dataset(source, allow_outside=True)][-1] == outside / "secret.wav"


def test_a_symbolic_link_within_the_dataset_folder_is_followed(tmp_path):
    folder, _ = linked_dataset(tmp_path)
    (folder / "sub").mkdir()
    (folder / "sub" / "x.wav").symlink_to(Path("..") / GOOD[0].path.name)
    (folder / "l.jsonl").write_text(json.dumps({"id": "x", "path": "sub/x.wav"}) + "\n")
    assert load_dataset(folder / "l.jsonl")[0].load().frames == load_dataset(folder / "manifest.jsonl")[0].load().frames


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("nope.jsonl", None, "no such manifest"),
        ("nope.scp", None, "no such wav.scp file"),
        ("list.txt", "a b\n", "not .txt"),
        ("empty.jsonl", "\n\n", "holds no items"),
        (
            "dup.jsonl",
            '{"id": "a", "path": "a.wav"}\n{"id": "a", "path": "b.wav"}\n',
            "duplicate item ids ['a']: 'a' is a.wav, b.wav",
        ),
        ("bytes.jsonl", b"\xff\xfe{}\n", "not UTF-8"),
        ("pipe.scp", "a sox x.wav -t wav - |\n", "piped commands are not supported"),
        ("one.scp", "lonely\n", "expected '<id> <path>'"),
        ("climb.scp", "a ../../x.wav\n", "lies outside the folder"),
    ],
)
def test_dataset_files_are_checked(tmp_path, name, text, fragment):
    path = tmp_path / name
    if text is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as info:
        load_dataset(path)
    assert fragment in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_decoded_conditions_manifest_stays_in_its_folder(tmp_path, capsys):
    (tmp_path / "dec.jsonl").write_text(json.dumps({"id": GOOD[0].id, "deg": "../../etc/passwd"}) + "\n")
    path = experiment_text(tmp_path, "codecs: [{name: mine, decoded: dec.jsonl}]")
    one_line_error(capsys, ["run", str(path)], "dec.jsonl:1: deg:", "lies outside the folder")


def test_a_dataset_error_leaves_no_run_behind(tmp_path, capsys):
    path = experiment_text(tmp_path, "dataset: data/missing.jsonl")
    one_line_error(capsys, ["run", str(path)], "missing.jsonl: no such manifest")
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    from evalkit.report.data import list_runs

    assert list_runs(engine) == []


# -- audio: failed rows with their reason, the rest of the run kept --------------------------


def audio_dataset(folder: Path) -> dict[str, str]:
    """Good items plus broken files; returns item id -> the reason its rows must give."""
    folder.mkdir()
    for item in GOOD:
        shutil.copyfile(item.path, folder / item.path.name)
    rng = np.random.default_rng(1)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "garbage.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    (folder / "text.wav").write_text("hello, I am not a WAV file\n")
    sf.write(folder / "nan.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(folder / "noframes.wav", np.zeros((0, 1), np.float32), 16000)
    save(Audio(0.1 * rng.standard_normal((2, 16000)), 16000), folder / "stereo.wav")
    return {
        "empty": "file is empty",
        "garbage": "not readable as audio",
        "text": "not readable as audio",
        "nan": "NaN",
        "noframes": "no audio frames",
        "stereo": "downmix",
    }


@pytest.mark.slow
def test_broken_audio_fails_its_own_rows_with_a_reason_and_nothing_else(tmp_path):
    expected = audio_dataset(tmp_path / "audio")
    path = experiment_text(tmp_path, "dataset: audio\ncodecs: [reference, g711-mulaw]")
    frame = evalkit.run(path)
    outputs = 1 + len(COST_METRICS)
    assert len(frame) == (len(GOOD) + len(expected)) * 2 * outputs  # every row there, none twice
    assert not frame.duplicated(["item_id", "codec", "metric"]).any()
    for item in GOOD:
        rows = frame[frame.item_id == Path(item.path.name).stem]
        assert len(rows) == 2 * outputs and (rows.status == "ok").all()
    for item_id, reason in expected.items():
        rows = frame[frame.item_id == item_id]
        assert (rows.status == "failed").all() and rows.value.isna().all(), item_id
        assert rows.reason.str.contains(reason, regex=False).all(), (item_id, rows.reason.tolist())
    # Changing downmix changes what is scored: the stereo item's failed rows are recomputed.
    path.write_text(path.read_text() + "downmix: true\n")
    again = evalkit.run(path)
    stereo = again[again.item_id == "stereo"]
    current = stereo[~stereo.codec_hash.isin(set(frame.codec_hash))]
    assert len(current) == 2 * outputs and (current.status == "ok").all()
    assert len(again) == 2 * len(frame)  # every item under the new setting; the earlier rows are kept


def test_a_compressed_file_that_declares_too_much_audio_is_refused_unread(tmp_path, monkeypatch):
    import evalkit.audio as audio_module

    bomb = tmp_path / "bomb.flac"
    sf.write(bomb, np.zeros(16000 * 60, dtype=np.float32), 16000, format="FLAC")  # a minute of silence
    assert bomb.stat().st_size < 16000 * 60 * 4 / 100  # the file is a small fraction of what it decodes to
    monkeypatch.setattr(audio_module, "MAX_LOAD_SAMPLES", 16000 * 30)
    with pytest.raises(EvalkitError, match=r"bomb.flac: declares 960000 frames x 1 channels .* cut it into shorter"):
        audio_module.load(bomb)
    sf.write(tmp_path / "fine.flac", 0.1 * np.ones(16000 * 10, dtype=np.float32), 16000, format="FLAC")
    assert audio_module.load(tmp_path / "fine.flac").frames == 16000 * 10


def test_a_missing_file_named_by_a_manifest_is_a_failed_row(tmp_path):
    path = experiment_text(tmp_path, "")
    with open(tmp_path / "data" / "manifest.jsonl", "a") as handle:
        handle.write(json.dumps({"id": "ghost", "path": "ghost.wav"}) + "\n")
    frame = evalkit.run(path)
    ghost = frame[frame.item_id == "ghost"]
    assert (ghost.status == "failed").all() and ghost.reason.str.contains("ghost.wav: no such file").all()
    assert (frame[frame.item_id != "ghost"].status == "ok").all()
    assert len(frame[frame.item_id != "ghost"]) == len(GOOD) * (1 + len(COST_METRICS))


# -- codec cards --------------------------------------------------------------------------------


def card_folder(tmp_path: Path, **cards: str) -> Path:
    folder = tmp_path / "cards"
    folder.mkdir()
    for name, text in cards.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    return folder


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("name: c\nbackend: identity\ncolour: red\n", ["c.yaml:3: colour: unknown key"]),
        ("name: [c]\nbackend: identity\n", ["c.yaml:1: name:", "letters, digits"]),
        ("backend: identity\n", ["c.yaml:1: name: is required"]),
        ("name: c\nbackend: identity\nparams: [1, 2]\n", ["c.yaml:3: params: must be a mapping"]),
        ("name: c\nbackend: 5\n", ["c.yaml:2: backend:", "got 5"]),
        ("name: c\nbackend: identity\ndisplay_name: [x]\n", ["c.yaml:3: display_name: must be a string"]),
        ("name: c\nbackend: identity\nparams: {a: 1\n", ["c.yaml:", "invalid YAML"]),
    ],
)
def test_unreadable_cards_are_named_and_do_not_hide_the_others(tmp_path, capsys, text, fragments):
    folder = card_folder(tmp_path, c=text, fine="name: fine\nbackend: identity\nparams: {sample_rate: 16000}\n")
    assert main(["--cards", str(folder), "codecs"]) == 1
    out, err = capsys.readouterr()
    assert "fine" in out and "opus-12k" in out  # the other cards are still listed
    assert len(err.strip().splitlines()) == 1 and all(f in err for f in fragments), err


def test_a_card_parameter_error_names_the_card_and_blocks_nothing(tmp_path, capsys):
    folder = card_folder(tmp_path, bad="name: bad-rate\nbackend: opus\nparams: {sample_rate: 16000, bitrate: 5}\n")
    assert main(["--cards", str(folder), "codecs", "-v"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("bad-rate "))
    assert "codec card bad-rate" in line and "bad.yaml" in line and "bitrate=5" in line
    assert any(line.startswith("opus-12k ") and " yes " in line for line in out.splitlines())
    path = experiment_text(tmp_path, f"cards: [{folder}]\ncodecs: [reference, bad-rate]")
    one_line_error(capsys, ["run", str(path)], "exp.yaml:2: codecs[1]: codec card bad-rate", "bad.yaml")


def test_a_card_name_used_twice_names_both_files(tmp_path, capsys):
    folder = card_folder(tmp_path, one="name: twin\nbackend: identity\n", two="name: twin\nbackend: identity\n")
    one_line_error(
        capsys,
        ["--cards", str(folder), "roundtrip", str(GOOD[0].path), "--codec", "twin", "-o", str(tmp_path / "o.wav")],
        "two.yaml",
        "one.yaml",
        "also used",
    )


# -- training configs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"recipe": "gan9000"}, ["recipe:", "'gan9000' is not one of"]),
        ({"optim": {"lr": "fast"}}, ["optim.lr: must be a number, got 'fast'"]),
        ({"optim": {"steps": 1.5}}, ["optim.steps: must be a whole number"]),
        ({"optim": {"learning_rate": 1}}, ["optim.learning_rate: unknown key"]),
        ({"run": {"amp": "maybe"}}, ["run.amp:", "auto, off, bf16, fp16"]),
        ({"run": {"resume": "no"}}, ["run.resume: must be true or false"]),
        ({"data": {"holdout": "x.jsonl"}}, ["data.train: is required"]),
        ({"data": {"train": "t.jsonl", "gain_db": [6]}}, ["data.gain_db: must be a list [low, high]"]),
        ({"data": {"train": "t.jsonl", "noise_prob": 2}}, ["data.noise_prob:", "outside"]),
        ({"seed": "lucky"}, ["seed: must be a whole number"]),
    ],
)
def test_training_configs_are_checked_before_anything_is_built(tmp_path, change, fragments):
    pytest.importorskip("torch")
    from evalkit.neural.train import TrainConfig

    config = {"recipe": "rvq", "data": {"train": "t.jsonl"}, **change}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as info:
        TrainConfig.load(path)
    assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)
    assert all(f in str(info.value) for f in fragments), str(info.value)


# -- listening-test definitions -----------------------------------------------------------------


def test_a_test_definition_error_names_its_line(tmp_path):
    from evalkit.mushra import load_spec

    path = tmp_path / "t.yaml"
    path.write_text("name: t\nitems:\n  - {id: a, path: a.wav}\nconditions: [opus-12k]\nlooping: 'yes'\n")
    (tmp_path / "a.wav").symlink_to(GOOD[0].path)
    with pytest.raises(ConfigError, match=r"t.yaml:5: looping: must be true or false, got 'yes'"):
        load_spec(path)


@pytest.mark.parametrize(
    "upload, message",
    [
        (b"name: t\nitems: []\nname: u\n", r"up.yaml:3: name: given twice; keep one"),
        (b"name: t\nitems: [\n", r"up.yaml:3:1: cannot read test definition: invalid YAML"),
        (b"\xff\xfename: t\n", r"up.yaml: cannot read test definition: not UTF-8 text"),
        (
            b"name: t\nitems:\n  - {id: a, path: a.wav}\nconditions: [opus-12k]\nlooping: 'yes'\n",
            r"up.yaml:5: looping: must be true or false, got 'yes'",
        ),
    ],
)
def test_an_uploaded_test_definition_is_checked_as_a_file_is(tmp_path, upload, message):
    from evalkit.config import parse_document
    from evalkit.mushra import spec_from_dict

    (tmp_path / "a.wav").symlink_to(GOOD[0].path)
    with pytest.raises(ConfigError, match=message) as info:
        document = parse_document(upload, "up.yaml", "test definition")
        spec_from_dict(document.data, base=tmp_path, source="up.yaml", lines=document.lines)
    assert "\n" not in str(info.value)


def upload_folders(tmp_path: Path) -> dict[str, Path]:
    """The definitions folder an upload's relative paths start from, a configured stimuli folder,
    and a folder elsewhere on the server; each holds audio."""
    folders = {name: tmp_path / name for name in ("defs", "stimuli", "elsewhere")}
    for name, folder in folders.items():
        folder.mkdir()
        shutil.copyfile(GOOD[0].path, folder / f"{name}.wav")
    (folders["elsewhere"] / "m.jsonl").write_text(json.dumps({"id": "x", "path": "elsewhere.wav"}) + "\n")
    (folders["defs"] / "link.wav").symlink_to(folders["elsewhere"] / "elsewhere.wav")
    return folders


def uploaded(folders: dict[str, Path], body: str):
    from evalkit.config import parse_document
    from evalkit.listening import spec_from_dict, upload_roots

    document = parse_document(f"name: t\n{body}".encode(), "up.yaml", "test definition")
    roots = upload_roots(folders["defs"], (folders["stimuli"],))
    return spec_from_dict(document.data, base=folders["defs"], source="up.yaml", lines=document.lines, roots=roots)


OUTSIDE_UPLOADS = [
    ("items:\n  - {id: a, path: ../elsewhere/elsewhere.wav}\nconditions: [g711-alaw]\n", "up.yaml:3: items[0].path"),
    (
        "items:\n  - {id: a, path: defs.wav}\n  - {id: b, path: ELSEWHERE}\nconditions: [g711-alaw]\n",
        "up.yaml:4: items[1].path",
    ),
    ("items:\n  - {id: a, path: link.wav}\nconditions: [g711-alaw]\n", "up.yaml:3: items[0].path"),
    ("manifest: ../elsewhere/m.jsonl\nitems: [x]\nconditions: [g711-alaw]\n", "up.yaml:2: manifest"),
    (
        "items:\n  - {id: a, path: defs.wav}\nconditions:\n  - {name: r, files: {a: ../elsewhere/elsewhere.wav}}\n",
        "up.yaml:5: conditions[0].files.a",
    ),
    (
        "items:\n  - {id: a, path: defs.wav}\nconditions:\n  - {name: r, files: ../elsewhere}\n",
        "up.yaml:5: conditions[0].files",
    ),
    (
        "type: acr\nitems:\n  - {id: a, path: defs.wav}\nconditions: [g711-alaw, g722-64k]\n"
        "trapping:\n  - {path: ../elsewhere/elsewhere.wav, answer: 1}\n",
        "up.yaml:7: trapping[0].path",
    ),
]


@pytest.mark.parametrize("body, where", OUTSIDE_UPLOADS)
def test_an_uploaded_definition_names_audio_only_in_the_allowed_folders(tmp_path, body, where):
    folders = upload_folders(tmp_path)
    body = body.replace("ELSEWHERE", str(folders["elsewhere"] / "elsewhere.wav"))
    with pytest.raises(ConfigError) as info:
        uploaded(folders, body)
    message = str(info.value)
    assert message.startswith(where) and "lies outside the folders an uploaded definition may use" in message
    assert "EVALKIT_UPLOAD_ALLOW_OUTSIDE=1" in message and "\n" not in message


def test_the_operator_decides_where_uploads_may_name_audio(tmp_path, monkeypatch):
    from evalkit.mushra import load_spec

    folders = upload_folders(tmp_path)
    inside = "items:\n  - {id: a, path: defs.wav}\n  - {id: b, path: ../stimuli/stimuli.wav}\nconditions: [g711-alaw]\n"
    outside = "items:\n  - {id: a, path: ../elsewhere/elsewhere.wav}\nconditions: [g711-alaw]\n"
    assert [item.id for item in uploaded(folders, inside).items] == ["a", "b"]
    monkeypatch.setenv("EVALKIT_UPLOAD_ROOTS", str(folders["elsewhere"]))  # replaces the default folder
    assert uploaded(folders, outside).items[0].path == folders["elsewhere"] / "elsewhere.wav"
    with pytest.raises(ConfigError, match="items\\[1\\].path: .* lies outside"):
        uploaded(folders, inside)
    monkeypatch.delenv("EVALKIT_UPLOAD_ROOTS")
    monkeypatch.setenv("EVALKIT_UPLOAD_ALLOW_OUTSIDE", "1")
    assert uploaded(folders, outside).items[0].id == "a"
    monkeypatch.delenv("EVALKIT_UPLOAD_ALLOW_OUTSIDE")
    (folders["defs"] / "t.yaml").write_text(f"name: t\n{outside}")  # a definition on disk: the operator's own
    assert load_spec(folders["defs"] / "t.yaml").items[0].path == folders["elsewhere"] / "elsewhere.wav"


def test_an_upload_cannot_allow_itself_outside_files(tmp_path):
    folders = upload_folders(tmp_path)
    with pytest.raises(ConfigError, match="up.yaml:2: .*allow_outside"):
        uploaded(
            folders,
            "allow_outside: true\nitems:\n  - {id: a, path: ../elsewhere/elsewhere.wav}\nconditions: [g711-alaw]\n",
        )


@pytest.mark.slow
def test_a_failed_test_creation_leaves_no_stimuli(tmp_path, monkeypatch):
    from sqlalchemy import func, select

    from evalkit import mushra
    from evalkit.mushra import load_spec
    from evalkit.store.models_mushra import MushraTest

    path = tmp_path / "t.yaml"
    items = "".join(f"  - {{id: i{k}, path: i{k}.wav, end: 1.0}}\n" for k in range(2))
    path.write_text(f"name: t\nitems:\n{items}conditions: [g711-mulaw]\n")
    for k in range(2):
        (tmp_path / f"i{k}.wav").symlink_to(GOOD[k].path)
    import evalkit.mushra.stimuli as stimuli

    calls = []
    original = stimuli.prepare_item

    def fail_second(spec, item, *args, **kwargs):
        calls.append(item.id)
        if len(calls) == 2:
            raise EvalkitError("codec g711-mulaw failed on the second item")
        return original(spec, item, *args, **kwargs)

    monkeypatch.setattr(stimuli, "prepare_item", fail_second)
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(EvalkitError, match="second item"):
        mushra.create_test(engine, load_spec(path), stimulus_root=tmp_path / "stimuli", cache_root=None)
    assert calls == ["i0", "i1"]
    assert list((tmp_path / "stimuli").iterdir()) == []  # the first item's files are gone too
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(MushraTest)).scalar_one() == 0


# -- results and the database from the command line ---------------------------------------------


def test_results_of_a_run_that_does_not_exist_is_an_error(tmp_path, capsys):
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    connect(database).dispose()
    one_line_error(capsys, ["results", "--database", database, "--run", "nope"], "no run named 'nope'", "none yet")


@pytest.mark.parametrize("command", [["results"], ["report", "--run", "t", "-o", "r.html"]])
def test_reading_a_database_that_does_not_exist_makes_none(tmp_path, capsys, command):
    database = f"sqlite:///{tmp_path / 'sub' / 'db.sqlite'}"
    one_line_error(capsys, [*command, "--database", database], "sub/db.sqlite", "no such file")
    assert not (tmp_path / "sub").exists()


def test_an_output_file_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    one_line_error(
        capsys,
        ["config", "default", "-o", str(tmp_path / "afile" / "exp.yaml")],
        f"{tmp_path / 'afile' / 'exp.yaml'}: Not a directory",
    )


def test_results_long_prints_every_row(tmp_path, capsys):
    path = experiment_text(tmp_path, "")
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["results", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}", "--run", "t", "--long"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 + len(GOOD) * (1 + len(COST_METRICS))  # header, rule, one line per row
    assert all(item.id in "\n".join(out) for item in GOOD)


def test_report_figures_into_a_file_fail_before_the_report_is_written(tmp_path, capsys):
    path = experiment_text(tmp_path, "")
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    (tmp_path / "afile").write_text("")
    argv = ["report", "--run", "t", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}", "-o", str(tmp_path / "r.html")]
    one_line_error(capsys, [*argv, "--figures", str(tmp_path / "afile")], "afile: is a file; give a folder")
    assert not (tmp_path / "r.html").exists()


def test_results_of_several_runs_are_never_pooled(tmp_path, capsys):
    """The same items scored by two runs: each run's table counts each item once (pooled, n would double)."""
    path = experiment_text(tmp_path, "")
    assert main(["run", str(path)]) == 0
    path.write_text(path.read_text().replace('name: "t"', 'name: "u"'))
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    database = ["--database", f"sqlite:///{tmp_path / 'db.sqlite'}"]
    assert main(["results", *database]) == 0
    out = capsys.readouterr().out
    assert "run t:" in out and "run u:" in out
    assert f"{len(GOOD)}/{len(GOOD)}" in out and f"{2 * len(GOOD)}/" not in out
    assert main(["results", *database, "--export", str(tmp_path / "s.csv")]) == 0
    exported = pd.read_csv(tmp_path / "s.csv")
    assert set(exported["run_id"]) == {"t", "u"} and set(exported["n_ok"]) == {len(GOOD)}


@pytest.mark.parametrize(
    "url, fragment",
    [("notadb://x", "not a database URL"), ("postgresql+psycopg://u:secret@127.0.0.1:1/x", "cannot be opened")],
)
def test_an_unusable_database_url_is_one_line_without_its_password(tmp_path, capsys, monkeypatch, url, fragment):
    monkeypatch.setenv("EVALKIT_DB_URL", url)
    line = one_line_error(capsys, ["results"], fragment)
    assert "secret" not in line


def test_a_read_only_results_database_is_one_line_for_the_commands_that_write(tmp_path, capsys):
    path = experiment_text(tmp_path, "")
    connect(f"sqlite:///{tmp_path / 'db.sqlite'}").dispose()  # made and migrated, then opened read-only
    read_only = f"sqlite:///file:{tmp_path / 'db.sqlite'}?mode=ro&uri=true"
    path.write_text(path.read_text().replace(f"sqlite:///{tmp_path / 'db.sqlite'}", read_only))
    one_line_error(capsys, ["run", str(path)], "the results database is read-only")
    argv = ["profile", "--codec", "reference", "--no-loss", "--repeats", "1", "--seconds", "1", "--database", read_only]
    one_line_error(capsys, argv, f"{read_only}: the results database is read-only")


def test_a_read_only_database_of_an_older_schema_says_it_must_be_upgraded(tmp_path, capsys):
    from evalkit.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = connect(url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    engine.dispose()
    read_only = f"sqlite:///file:{tmp_path / 'db.sqlite'}?mode=ro&uri=true"
    one_line_error(capsys, ["results", "--database", read_only], "is upgraded in place: make it writable")


def test_a_file_that_is_not_a_database_is_one_line(tmp_path, capsys):
    (tmp_path / "db.sqlite").write_text("not a database\n")
    one_line_error(capsys, ["run", str(experiment_text(tmp_path, ""))], "cannot be opened (file is not a database)")


def test_a_full_disk_under_the_results_database_is_one_line_and_keeps_what_was_stored(tmp_path, capsys, monkeypatch):
    import evalkit.store.db as db

    assert main(["run", str(experiment_text(tmp_path, ""))]) == 0
    engine = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as connection:  # the file's size now: no later write may grow it
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    engine.dispose()
    enable_wal = db._enable_wal

    def full_disk(cursor):
        enable_wal(cursor)
        cursor.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(db, "_enable_wal", full_disk)
    bigger = experiment_text(tmp_path, "codecs: [reference, g722-64k, opus-12k]\nmetrics: [si_sdr, lsd, stoi]")
    capsys.readouterr()
    assert main(["run", str(bigger)]) == 1
    err = capsys.readouterr().err  # the progress bar, then one line
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("evalkit: error: the results database failed (database or disk is full)")
    )
    monkeypatch.undo()
    assert main(["results", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"]) == 0
    assert "reference  si_sdr" in capsys.readouterr().out


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_demo_limit_below_one_is_refused_not_sliced(capsys, limit):
    one_line_error(capsys, ["demo", "--limit", limit, "--no-score"], f"--limit {limit}: give at least 1 item")


def test_an_app_address_or_port_it_cannot_listen_on_is_one_line_before_start_up(capsys):
    import socket

    one_line_error(capsys, ["app", "--port", "99999"], "--port 99999: give a port from 1 to 65535")
    one_line_error(capsys, ["app", "--address", "no-such-host.invalid"], "not an address of this machine")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        one_line_error(capsys, ["app", "--address", "127.0.0.1", "--port", str(port)], "another program listens there")


def test_an_sqlite_file_in_a_read_only_folder_says_why_it_cannot_be_opened(tmp_path, monkeypatch):
    from sqlalchemy import URL

    from evalkit.store.db import _read_only_folder

    (tmp_path / "db.sqlite").write_bytes(b"")
    url = URL.create("sqlite", database=str(tmp_path / "db.sqlite"))
    assert _read_only_folder(url) == ""
    monkeypatch.setattr("os.access", lambda path, mode: False)  # root may write anywhere: the folder pretends
    assert "is read-only and SQLite writes its journal beside the file" in _read_only_folder(url)


def test_the_yaml_reader_refuses_what_yaml_would_silently_accept(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b: 1\n  b: 2\n")
    with pytest.raises(ConfigError, match=r"x.yaml:3: a.b: given twice"):
        read_yaml(path, "thing")
    path.write_text("a: &x [*x]\n")  # a self-referencing alias is read, not walked forever
    data = read_yaml(path, "thing")
    assert data["a"][0] is data["a"]
