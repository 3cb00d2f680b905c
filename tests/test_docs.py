"""The README and docs/ as a newcomer runs them: commands, flags, files, targets and names exist."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from evalkit.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_FOLDERS = ("evalkit/", "tests/", "scripts/", "benchmarks/", "configs/", "codecs/", "docs/", "app/", "experiments/")
# Files the docs show as examples to write (or that a built wheel makes), not files of the repository.
EXAMPLE_PATHS = {
    "tests/test_x.py",
    "evalkit/codecs/ulaw12.py",
    "codecs/ulaw12.yaml",
    "evalkit/neural/tiny_recipe.py",
    "codecs/__init__.py",  # the "before" column of contributing.md's table
    "evalkit/_data",
}
EXAMPLE_MODULES = {"evalkit.codecs.ulaw12", "evalkit.content.wav2vec", "evalkit.neural.tiny_recipe"}
EXAMPLE_MODULES |= {"evalkit.listening.types.triangle", "evalkit.db"}  # evalkit.db: the results file


def doc_lines() -> list[tuple[str, int, str, bool]]:
    """(file, line number, text, inside a shell code block) for every line of the docs."""
    lines = []
    for path in DOCS:
        fence = None
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if match := re.match(r"\s*```(\w*)", text):
                fence = None if fence is not None else match.group(1)
                continue
            lines.append((path.name, number, text, fence in ("sh", "bash", "console", "")))
    return lines


def shell_commands(program: str) -> list[tuple[str, list[str], bool]]:
    """Every `program ...` command of the docs: whole lines of shell blocks (continuations joined,
    comments and pipes cut) and inline `program ...` spans, as (where, tokens, from a block)."""
    found, pending = [], ""
    for name, number, text, shell in doc_lines():
        if shell:
            line = pending + text.split(" #")[0].split("|")[0].rstrip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            words = line.split()
            if program in words:
                found.append((f"{name}:{number}", words[words.index(program) :], True))
        for span in re.findall(rf"`({re.escape(program)} [^`]+)`", text):
            found.append((f"{name}:{number}", span.split(), False))
    return [(where, _tokens(words), block) for where, words, block in found]


def _tokens(words: list[str]) -> list[str]:
    try:
        return shlex.split(" ".join(words))
    except ValueError:  # an unbalanced quote in prose: the words as written
        return words


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def check_command(tokens: list[str]) -> list[str]:
    """What is wrong with `evalkit ...` as written: unknown subcommands, flags or choices."""
    parser, problems = build_parser(), []
    words = [w for w in (t.strip("[](),") for t in tokens[1:]) if w and w != "..."]
    index = 0
    while index < len(words):
        word, options, commands = words[index], _options(parser), _subparsers(parser)
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            action = options.get(word.split("=")[0])
            if action is None:
                problems.append(f"{word.split('=')[0]}: no such option of {parser.prog!r}")
            elif action.nargs != 0 and "=" not in word:
                values = words[index + 1 : index + 1 + (action.nargs if isinstance(action.nargs, int) else 1)]
                for value in (v for vs in values if action.choices and not vs.isupper() for v in vs.split("|")):
                    if value not in action.choices:
                        problems.append(f"{word} {value}: not one of {list(action.choices)}")
                index += len(values)
        elif commands and word not in commands:
            problems.append(f"{word}: no such command of {parser.prog!r}")
            break
        elif commands:
            parser = commands[word]
        index += 1
    return problems


def test_every_evalkit_command_in_the_docs_has_its_subcommands_flags_and_choices():
    commands = shell_commands("evalkit")
    assert len(commands) > 60  # the reader's walk: README's command list, byo, ratings, listening, neural
    problems = [f"{where}: {' '.join(tokens)}: {p}" for where, tokens, _ in commands for p in check_command(tokens)]
    assert not problems, "\n".join(problems)


def test_the_shell_blocks_evalkit_commands_parse_as_written():
    """The commands a reader copies from a code block are complete: argparse takes them whole."""
    for where, tokens, block in shell_commands("evalkit"):
        if block:
            try:
                build_parser().parse_args(tokens[1:])
            except SystemExit:
                pytest.fail(f"{where}: {' '.join(tokens)} does not parse")


def test_the_checker_finds_what_the_docs_could_get_wrong():
    assert check_command(["evalkit", "mushra"]) == ["mushra: no such command of 'evalkit'"]
    assert check_command(["evalkit", "results", "--run", "x", "--exprt", "a.csv"])[0].startswith("--exprt")
    assert check_command(["evalkit", "report", "--run", "x", "--format", "pdf|docx"]) == [
        "--format docx: not one of ['html', 'pdf', 'csv', 'parquet', 'latex']"
    ]
    assert check_command(["evalkit", "listening", "power", "--effect", "D", "[--type", "mushra|acr]"]) == []


def test_scripts_and_modules_the_docs_run_exist_and_take_the_flags_shown():
    runs = shell_commands("python")
    assert runs
    for where, tokens, _ in runs:
        target = tokens[1:3] if tokens[1] == "-m" else tokens[1:2]
        if target[0] == "-m":
            path = ROOT / (target[1].replace(".", "/") + ".py")
            if not path.exists() and target[1] in ("pytest",):
                continue
        else:
            path = ROOT / target[0]
        assert path.is_file(), f"{where}: {path.relative_to(ROOT)} does not exist"
        source = path.read_text()
        for flag in (t.split("=")[0] for t in tokens if t.startswith("--")):
            assert f'"{flag}"' in source, f"{where}: {path.relative_to(ROOT)} has no option {flag}"


def test_every_make_target_and_variable_the_docs_name_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    named = shell_commands("make")
    assert {tokens[1] for _, tokens, _ in named} >= {"demo", "test", "lint", "bench", "js", "setup"}
    for where, tokens, _ in named:
        for word in tokens[1:]:
            if "=" in word:
                assert re.search(rf"^{word.split('=')[0]} \?=", makefile, re.M), f"{where}: no variable {word}"
            else:
                assert word in targets, f"{where}: no make target {word!r}"


def test_every_repository_path_the_docs_mention_exists():
    folders = "|".join(map(re.escape, TOP_FOLDERS))
    pattern = re.compile(rf"(?<![\w/.])((?:{folders})[\w./-]*\w)")
    missing = [
        f"{name}:{number}: {path}"
        for name, number, text, _ in doc_lines()
        for path in pattern.findall(text)
        if not re.search(r"[<{*]", path) and path not in EXAMPLE_PATHS and not (ROOT / path).exists()
    ]
    assert not missing, "\n".join(missing)


def test_every_evalkit_name_the_docs_give_can_be_imported():
    groups = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"])
    names = {name for _, _, text, _ in doc_lines() for name in re.findall(r"\bevalkit(?:\.[A-Za-z_]\w*)+", text)}
    missing = [name for name in sorted(names - groups - EXAMPLE_MODULES) if not _resolves(name)]
    assert not missing, missing


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            return False
        return True
    return False


def test_every_command_line_argument_says_what_it_is_and_its_default():
    def arguments(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from arguments(sub, [*path, name])
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield " ".join(path), action

    silent = []
    for command, action in arguments(build_parser(), ["evalkit"]):
        name = "/".join(action.option_strings) or action.dest
        if not action.help:
            silent.append(f"{command} {name}: no help")
        elif action.default not in (None, False, argparse.SUPPRESS) and "default" not in action.help:
            silent.append(f"{command} {name}: default {action.default!r} not stated")
    assert not silent, "\n".join(silent)


def test_every_experiment_and_test_definition_key_is_documented():
    from evalkit.experiment import _KEYS, DEFAULT_CONFIG
    from evalkit.listening.spec import SHARED_KEYS
    from evalkit.listening.types import TEST_TYPES

    assert {key for key in _KEYS if f"\n{key}:" not in DEFAULT_CONFIG} == {"resolved"}  # resolved: written by evalkit
    listening = (ROOT / "docs" / "mushra.md").read_text() + (ROOT / "docs" / "listening.md").read_text()
    keys = SHARED_KEYS.union(*(TEST_TYPES.get(name).keys for name in TEST_TYPES.names()))
    assert not [key for key in sorted(keys) if f"`{key}" not in listening]


def test_module_qualified_names_in_the_listening_docs_exist():
    """`stats.holm`, `crowd.record_rejections`, `TestSpec.warnings`: short names of evalkit.mushra and
    evalkit.listening modules and classes, as docs/mushra.md, listening.md and ratings.md write them."""
    import dataclasses

    import evalkit.mushra
    from evalkit.listening.spec import SHARED_KEYS

    text = "".join((ROOT / "docs" / name).read_text() for name in ("mushra.md", "listening.md", "ratings.md"))
    not_names = SHARED_KEYS | {"evalkit", "st", "type", "core", "excerpt"}  # keys, evalkit.*, st.App, core.js
    missing = []
    for owner, attribute in sorted(set(re.findall(r"`([A-Za-z_]\w*)\.([A-Za-z_]\w*)`", text))):
        if attribute in ("py", "js", "csv", "scp", "yaml", "md"):  # a file name (playlog.py), not code
            continue
        target = _short_module(owner) or getattr(evalkit.mushra, owner, None)
        if target is None:
            if owner not in not_names:  # definition keys (loudness.target_lufs) are not code
                missing.append(f"{owner}.{attribute}: no module or class {owner!r}")
            continue
        fields = {f.name for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else set()
        if not hasattr(target, attribute) and attribute not in fields:
            missing.append(f"{owner}.{attribute}: {owner} has no {attribute!r}")
    assert not missing, "\n".join(missing)


def _short_module(name: str):
    for package in ("evalkit.mushra", "evalkit.listening"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ImportError:
            continue
    return None


@pytest.mark.slow
def test_the_byo_plugin_example_installs_and_runs_as_written(tmp_path):
    """docs/byo.md's worked example, copied block by block as a reader would, pip-installed offline."""
    import os
    import subprocess

    from test_cards import offline_venv_with

    blocks = re.findall(
        r"```(?:toml|python|yaml)\n# (\S+)[^\n]*\n(.*?)```", (ROOT / "docs" / "byo.md").read_text(), re.S
    )
    files = {name: text for name, text in blocks if name.startswith("mycodec/") or name == "pyproject.toml"}
    assert set(files) == {"pyproject.toml", "mycodec/__init__.py", "mycodec/cards/halfgain.yaml"}
    project = tmp_path / "mycodec"
    for name, text in {**files, "mycodec/cards/__init__.py": ""}.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    python = offline_venv_with(tmp_path / "venv", project)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EVALKIT_CARDS", None)
    listed = subprocess.run(
        [str(python), "-m", "evalkit", "codecs"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    (row,) = [line.split() for line in listed.stdout.splitlines() if line.startswith("halfgain ")]
    shown = re.search(r"evalkit codecs \| grep halfgain +# (.*)", (ROOT / "docs" / "byo.md").read_text())
    assert shown and row == shown.group(1).split()  # the line the doc says it prints
    wav = ROOT / "data" / "demo" / "audio" / "arctic-awb-a0007.wav"
    done = subprocess.run(
        [str(python), "-m", "evalkit", "roundtrip", str(wav), "--codec", "halfgain", "-o", str(tmp_path / "out.wav")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
