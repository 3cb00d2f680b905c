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
