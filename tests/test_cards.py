"""Card search path: folders add to the built-in cards, never replace them; plug-in packages ship their own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from evalkit.cards import cards_dir, find_card, load_cards
from evalkit.cli import main
from evalkit.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
BUILT_IN = {path.stem for path in (ROOT / "codecs").glob("*.yaml")}


def card_folder(folder: Path, **cards: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, backend_params in cards.items():
        backend, params = backend_params.split(":", 1)
        (folder / f"{name}.yaml").write_text(f"name: {name}\nbackend: {backend}\nparams: {params}\n")
    return folder


def test_a_folder_adds_to_the_built_in_cards(tmp_path):
    mine = card_folder(tmp_path / "mine", **{"my-alaw": "g711:{law: a}"})
    cards = load_cards(mine)
    assert BUILT_IN <= set(cards) and "my-alaw" in cards
    assert (cards["my-alaw"].source, cards["reference"].source) == ("--cards", "built-in")


def test_evalkit_cards_is_a_path_list_and_adds_too(tmp_path, monkeypatch):
    one = card_folder(tmp_path / "one", **{"a-law": "g711:{law: a}"})
    two = card_folder(tmp_path / "two", **{"mu-law": "g711:{law: mu}"})
    monkeypatch.setenv("EVALKIT_CARDS", os.pathsep.join([str(one), str(two), str(cards_dir())]))
    cards = load_cards()
    assert {"a-law", "mu-law"} <= set(cards) and BUILT_IN <= set(cards)  # the built-in folder listed again counts once
    assert cards["mu-law"].source == "EVALKIT_CARDS"


def test_a_name_clash_names_both_files(tmp_path):
    clash = card_folder(tmp_path / "clash", **{"opus-12k": "g711:{law: a}"})
    with pytest.raises(
        ConfigError, match=r"clash/opus-12k.yaml: card name 'opus-12k' is also used by .*codecs/opus-12k.yaml"
    ):
        load_cards(clash)


def test_a_missing_folder_is_an_error_wherever_it_is_named(tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match=r"nowhere \(from --cards\) does not exist"):
        load_cards(tmp_path / "nowhere")
    monkeypatch.setenv("EVALKIT_CARDS", str(tmp_path / "gone"))
    assert main(["codecs"]) == 1
    assert "gone (from EVALKIT_CARDS) does not exist" in capsys.readouterr().err


def test_an_experiment_lists_card_folders_relative_to_itself(tmp_path):
    from evalkit.experiment import load_experiment

    card_folder(tmp_path / "a", **{"alaw-a": "g711:{law: a}"})
    card_folder(tmp_path / "b", **{"mulaw-b": "g711:{law: mu}"})
    config = {
        "name": "t",
        "dataset": "x.jsonl",
        "codecs": ["reference", "alaw-a", "mulaw-b"],
        "metrics": ["si_sdr"],
        "cards": ["a", "b"],
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    exp = load_experiment(tmp_path / "exp.yaml")
    assert [(c.name, c.source) for c in exp.codecs] == [
        ("reference", "built-in"),
        ("alaw-a", "experiment"),
        ("mulaw-b", "experiment"),
    ]
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({**config, "cards": ["a", "missing"]}))
    with pytest.raises(ConfigError, match="missing \\(from experiment\\) does not exist"):
        load_experiment(tmp_path / "exp.yaml")


def test_codecs_shows_each_cards_source(tmp_path, capsys):
    card_folder(tmp_path / "mine", **{"my-alaw": "g711:{law: a}"})
    assert main(["--cards", str(tmp_path / "mine"), "codecs", "-v"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert f"--cards ({tmp_path / 'mine'})" in lines["my-alaw"] and "built-in" in lines["opus-12k"]
    assert " item " in lines["reference"]  # the reference runs at each item's rate


def test_relative_weights_are_found_beside_their_card(tmp_path):
    pytest.importorskip("torch")
    folder = card_folder(tmp_path / "mine")
    (folder / "mine-rvq.yaml").write_text(
        "name: mine-rvq\nbackend: rvq\nparams: {weights: w/model.pt, sha256: '" + "0" * 64 + "', n_q: 4}\n"
    )
    with pytest.raises(ConfigError, match=f"{folder / 'w' / 'model.pt'} not found"):
        find_card("mine-rvq", folder).build()


def test_relative_weights_beside_a_card_from_a_relative_folder_load(tmp_path, monkeypatch, capsys):
    """`evalkit --cards mine ...` run from the folder above `mine`, the card naming `weights/...`."""
    folder = card_folder(tmp_path / "mine")
    (folder / "weights").mkdir()
    built_in = yaml.safe_load((ROOT / "codecs" / "nmf-r8-q6.yaml").read_text())
    (folder / "weights" / "nmf.npz").write_bytes((ROOT / "codecs" / built_in["params"]["weights"]).read_bytes())
    params = {**built_in["params"], "weights": "weights/nmf.npz"}
    (folder / "my-nmf.yaml").write_text(yaml.safe_dump({"name": "my-nmf", "backend": "nmf", "params": params}))
    monkeypatch.chdir(tmp_path)
    assert find_card("my-nmf", "mine").build().info.sample_rate == 16000
    assert main(["--cards", "mine", "codecs"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("my-nmf ")]
    assert " yes " in line


def test_the_reference_card_follows_the_item_rate():
    card = find_card("reference")
    assert card.follows_item_rate
    assert [card.build(rate).info.sample_rate for rate in (8000, 44100)] == [8000, 44100]


# -- a plug-in package, installed into its own virtual environment -------------------------

PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "evk-plugin"
        version = "1.0"

        [project.entry-points."evalkit.codecs"]
        evk-halfgain = "evk_plugin:HalfGain"

        [project.entry-points."evalkit.cards"]
        evk-plugin = "evk_plugin.cards"

        [tool.setuptools]
        packages = ["evk_plugin", "evk_plugin.cards"]

        [tool.setuptools.package-data]
        "evk_plugin.cards" = ["*.yaml"]
    """,
    "evk_plugin/__init__.py": '''
        """A plug-in codec for evalkit: 16-bit PCM at a fixed gain."""
        import numpy as np

        from evalkit.codecs import Codec, CodecInfo


        class HalfGain(Codec):
            backend = "evk-halfgain"

            def __init__(self, gain=0.5, sample_rate=16000):
                self.gain, self.sample_rate = float(gain), int(sample_rate)

            @property
            def info(self):
                return CodecInfo(name=self.backend, version="evk-plugin 1.0", family="plugin",
                                 sample_rate=self.sample_rate, frame_samples=self.sample_rate // 50,
                                 lookahead_samples=0, nominal_bitrate=16.0 * self.sample_rate)

            def _encode(self, samples):
                pcm = np.clip(np.round(samples[0] * self.gain * 32768), -32768, 32767).astype("<i2")
                step = self.info.frame_samples
                return {}, [pcm[i:i + step].tobytes() for i in range(0, len(pcm), step)]

            def _decode(self, header, packets):
                return np.concatenate([np.frombuffer(p, "<i2") for p in packets]).astype(np.float32) / 32768
    ''',
    "evk_plugin/cards/__init__.py": '"""Codec cards shipped by evk-plugin."""\n',
    "evk_plugin/cards/halfgain.yaml": "name: halfgain\nbackend: evk-halfgain\nparams: {gain: 0.5}\n",
}


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> Path:
    """A fresh virtual environment that sees evalkit's dependencies and has evk-plugin installed (offline)."""
    root = tmp_path_factory.mktemp("plugin")
    for name, text in PLUGIN.items():
        (root / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / name).write_text(textwrap.dedent(text).lstrip())
    return offline_venv_with(root / "venv", root / "src")


def offline_venv_with(venv: Path, project: Path) -> Path:
    """The python of a fresh virtual environment at `venv` that sees evalkit's dependencies, with the
    package in folder `project` installed offline (no index, no build isolation)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "evalkit-deps.pth").write_text("\n".join(ours) + "\n")  # numpy, scipy, ... and pip itself
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-build-isolation",
            "--no-deps",
            str(project),
        ],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return python


def _evalkit(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EVALKIT_CARDS", None)
    return subprocess.run([str(python), "-m", "evalkit", *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_a_plugin_package_runs_its_backend_and_cards_beside_the_built_in_ones(plugin_python, tmp_path):
    listing = _evalkit(plugin_python, "codecs", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert "package evk-plugin" in rows["halfgain"] and "built-in" in rows["opus-12k"]
    config = {
        "name": "p",
        "dataset": str(ROOT / "data" / "demo" / "manifest.jsonl"),
        "limit": 2,
        "workers": 0,
        "codecs": ["reference", "halfgain"],
        "metrics": ["si_sdr"],
        "database": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "cache": str(tmp_path / "cache"),
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    run = _evalkit(plugin_python, "run", "exp.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    table = {tuple(line.split()[:2]): line.split() for line in run.stdout.splitlines() if line.strip()}
    assert table[("halfgain", "si_sdr")][2] == "2/2" and table[("reference", "si_sdr")][2] == "2/2"
    assert _evalkit(sys.executable, "codecs", cwd=tmp_path).stdout.count("halfgain") == 0  # not installed here
