"""Where evalkit's data lives: inside the installed package, or beside it in a source checkout."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

__all__ = ["DATA_FOLDERS", "PACKAGED", "data_root", "data_path", "cards_dir", "is_installed_copy"]

# The checkout's folders (and files) that the package needs at run time; building a wheel copies
# them, with the same layout, into evalkit/_data (see setup.py), so one relative path finds each.
DATA_FOLDERS = ("codecs", "tests_mushra", "app", "data/demo", "experiments/demo.yaml")
PACKAGED = "_data"


@lru_cache(maxsize=1)
def data_root() -> Path:
    """evalkit/_data in an installed wheel; the checkout's root in a source or editable install."""
    packaged = files(__package__) / PACKAGED
    if packaged.is_dir():
        return Path(str(packaged))  # wheels install unzipped: the resource is a real folder
    return Path(str(files(__package__))).resolve().parent


def data_path(relative: str) -> Path:
    """One of DATA_FOLDERS (or a path under one), e.g. data_path("data/demo/manifest.jsonl")."""
    return data_root() / relative


def cards_dir() -> Path:
    """The built-in card folder (codecs/), weights included."""
    return data_path("codecs")


def is_installed_copy(path: Path) -> bool:
    """Whether `path` lies in the installed package's data (read-only: write results elsewhere)."""
    return data_root().name == PACKAGED and data_root() in Path(path).resolve().parents
