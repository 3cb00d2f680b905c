"""Versions of evalkit and of the packages that produce its numbers: stored with results, shown by --version."""

from __future__ import annotations

import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from . import __version__

__all__ = ["PINNED_PACKAGES", "METRIC_PACKAGES", "package_versions", "version_text"]

# Packages whose versions change numbers; stored with every round trip.
PINNED_PACKAGES = ("numpy", "scipy", "soxr", "soundfile", "av", "pycodec2", "lc3py", "pocketsphinx")
# The packages under the metrics (each result row stores its metric's own; tests/test_layout.py checks
# that this list names every metric's package).
METRIC_PACKAGES = ("pesq", "pystoi", "visqol-python", "warpq", "speechmos", "pysptk", "torch", "resemblyzer",
                   "transformers")


@lru_cache(maxsize=None)
def _installed_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    found = {"evalkit": __version__, "python": sys.version.split()[0]}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return tuple(found.items())


def package_versions() -> dict[str, str]:
    """Versions of evalkit, Python and the pinned packages (read once per process)."""
    return dict(_installed_versions(PINNED_PACKAGES))


def version_text() -> str:
    """What `evalkit --version` prints: evalkit's version, then every number-producing package found."""
    found = dict(_installed_versions(PINNED_PACKAGES + METRIC_PACKAGES))
    lines = [f"evalkit {found.pop('evalkit')}"]
    lines += [f"  {name} {value}" for name, value in found.items()]
    return "\n".join(lines)
