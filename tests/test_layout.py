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


def _prints_outside_main(path: Path) -> list[str]:
    """Calls of print() that are not in a script's main function (`python -m ...` entry points print)."""
    import ast

    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call) and getattr(child.func, "id", None) == "print" and not name.endswith("main"):
                found.append(f"{path.relative_to(ROOT)}:{child.lineno}")
            visit(child, name)

    visit(ast.parse(path.read_text()), "")
    return found


def test_only_the_command_line_layer_prints_or_reads_argparse_options():
    library = [
        path
        for path in (ROOT / "evalkit").rglob("*.py")
        if path.name not in ("cli.py", "__main__.py") and "commands" not in path.parts
    ]
    assert [hit for path in library for hit in _prints_outside_main(path)] == []
    scripts_only = [
        path.relative_to(ROOT)
        for path in library
        if "argparse" in path.read_text() and "__main__" not in path.read_text()
    ]
    assert scripts_only == []


def test_every_evalkit_import_names_a_module():
    # Imports inside functions fail only when they run: after a module is renamed, this finds them all.
    import ast

    from evalkit.mushra import MOVED

    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "evalkit").rglob("*.py")
    } | {f"evalkit.mushra.{name}" for name in MOVED}
    stale = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if {".venv", "migrations", ".git"} & set(rel.parts):
            continue
        package = list(rel.parent.parts) if rel.name == "__init__.py" else list(rel.with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                names = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            stale += [
                f"{rel}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] == "evalkit" and name not in modules
            ]
    assert stale == []


def test_the_data_the_package_reads_is_what_the_wheel_carries():
    """setup.py copies the same folders that evalkit.resources reads; in a checkout they are found in place."""
    import ast

    from evalkit import resources

    tree = ast.parse((ROOT / "setup.py").read_text())
    copied = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DATA_FOLDERS"
    )
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
