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
    library = [path for path in (ROOT / "evalkit").rglob("*.py")
               if path.name not in ("cli.py", "__main__.py") and "commands" not in path.parts]
    assert [hit for path in library for hit in _prints_outside_main(path)] == []
    scripts_only = [path.relative_to(ROOT) for path in library
                    if "argparse" in path.read_text() and "__main__" not in path.read_text()]
    assert scripts_only == []
