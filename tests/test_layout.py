"""Project layout rules that protect imports and the data-only folders."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_codecs_folder_holds_no_python():
    # A top-level Python package named `codecs` can never be imported: the standard
    # library's `codecs` module is loaded first, at interpreter start-up.
    assert not list((ROOT / "codecs").rglob("*.py"))
    assert not list((ROOT / "tests_mushra").rglob("*.py"))


def test_codec_cards_are_named_after_their_files():
    import yaml

    for path in (ROOT / "codecs").glob("*.yaml"):
        assert yaml.safe_load(path.read_text())["name"] == path.stem, path.name


def test_the_data_the_package_reads_is_what_the_wheel_carries():
    """setup.py copies the same folders that evalkit.resources reads; in a checkout they are found in place."""
    import ast

    from evalkit import resources

    tree = ast.parse((ROOT / "setup.py").read_text())
    copied = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", "") == "DATA_FOLDERS")
    assert ast.literal_eval(copied) == resources.DATA_FOLDERS
    assert resources.data_root() == ROOT
    assert all((ROOT / relative).exists() for relative in resources.DATA_FOLDERS)
    assert not resources.is_installed_copy(ROOT / "experiments" / "demo.yaml")
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert all(relative in manifest for relative in resources.DATA_FOLDERS)


def test_version_lists_every_pinned_metric_package():
    from evalkit.metrics import METRICS
    from evalkit.versions import exact_pins, version_text

    listed = {line.split()[0] for line in version_text().splitlines()[1:]}
    packages = {METRICS.get(name).spec.package for name in METRICS.names()} - {None}
    assert packages & set(exact_pins()) <= listed and {"pesq", "pystoi", "av"} <= listed


def test_version_names_evalkit_and_the_number_producing_packages():
    import subprocess
    import sys

    import evalkit

    done = subprocess.run([sys.executable, "-m", "evalkit", "--version"], capture_output=True, text=True, cwd=ROOT)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0] == f"evalkit {evalkit.__version__}"
    assert any(line.split()[0] == "numpy" for line in lines[1:]) and any(line.split()[0] == "av" for line in lines[1:])
