"""The definition checker: evalkit.config's, shared by every file format, plus where files may lie."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import Checker

__all__ = ["Checker", "DefinitionChecker", "upload_roots", "UPLOAD_ROOTS_VAR", "UPLOAD_ANYWHERE_VAR"]

# Set by the server's operator (an uploaded definition cannot change them).
UPLOAD_ROOTS_VAR = "EVALKIT_UPLOAD_ROOTS"  # folders, os.pathsep-separated, uploads may name audio in
UPLOAD_ANYWHERE_VAR = "EVALKIT_UPLOAD_ALLOW_OUTSIDE"  # "1": uploads may name any file the server can read


class DefinitionChecker(Checker):
    """A test definition's checker. With `roots`, every file the definition names must lie in one
    of them, symbolic links resolved (None: anywhere, as for a definition read from disk)."""

    def __init__(self, source: str, lines: dict[str, int] | None = None, roots: tuple[Path, ...] | None = None):
        super().__init__(source, lines)
        self.roots = None if roots is None else tuple(Path(root).resolve() for root in roots)

    def confine(self, path: Path, key: str) -> Path:
        """`path`, when it lies in an allowed folder; checked before the file is opened or even
        looked for, so an upload learns nothing about files elsewhere."""
        if self.roots is None:
            return path
        real = path.resolve()
        if not any(real == root or root in real.parents for root in self.roots):
            folders = ", ".join(str(root) for root in self.roots)
            self.fail(
                key,
                f"{str(path)!r} lies outside the folders an uploaded definition may use ({folders}); "
                f"put the audio there (the server's operator may add folders with ${UPLOAD_ROOTS_VAR}, "
                f"or allow any file with ${UPLOAD_ANYWHERE_VAR}=1)",
            )
        return path


def upload_roots(base: Path, default: tuple[Path, ...] = ()) -> tuple[Path, ...] | None:
    """The folders an uploaded definition may name files in: `base` (its relative paths start there)
    and the operator's ${UPLOAD_ROOTS_VAR} (else `default`); None when the operator allowed any
    file (${UPLOAD_ANYWHERE_VAR}=1)."""
    if os.environ.get(UPLOAD_ANYWHERE_VAR, "").strip() == "1":
        return None
    given = os.environ.get(UPLOAD_ROOTS_VAR, "")
    extra = tuple(Path(part) for part in given.split(os.pathsep) if part.strip()) if given.strip() else default
    return (Path(base), *extra)
