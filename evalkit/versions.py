"""Versions of evalkit and of the packages that produce its numbers: stored with results, shown by --version."""

from __future__ import annotations

import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, requires, version

from . import __version__

__all__ = ["PINNED_PACKAGES", "package_versions", "exact_pins", "version_text"]

# Packages whose versions change numbers; stored with every round trip.
PINNED_PACKAGES = ("numpy", "scipy", "soxr", "soundfile", "av", "pycodec2", "lc3py", "pocketsphinx")


@cache
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


def exact_pins() -> tuple[str, ...]:
    """The packages evalkit's metadata pins exactly (`name==version`): the project pins every package
    that produces numbers (metrics, codecs, resampling, loudness, statistics) that way."""
    try:
        declared = requires("evalkit") or []
    except PackageNotFoundError:
        return ()
    pinned = [line for line in declared if "==" in line and 'extra == "dev"' not in line]  # not the test tools
    return tuple(dict.fromkeys(line.split("==")[0].split("[")[0].strip() for line in pinned))


def version_text() -> str:
    """What `evalkit --version` prints: evalkit's version, the packages stored with every round trip,
    then the other exactly pinned packages that are installed."""
    found = dict(_installed_versions(PINNED_PACKAGES + exact_pins()))
    lines = [f"evalkit {found.pop('evalkit')}"]
    lines += [f"  {name} {value}" for name, value in found.items()]
    return "\n".join(lines)
