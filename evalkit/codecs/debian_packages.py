"""What the operating system provides to codec backends: Debian package versions."""

from __future__ import annotations

import subprocess
from functools import cache

__all__ = ["debian_version"]


def debian_version(package: str) -> str:
    """The installed Debian package's version (stored with results), or "unknown version"."""
    return _installed().get(package) or "unknown version"


@cache
def _installed() -> dict[str, str]:
    """Every installed package's version, from one dpkg-query (one per package costs a process each)."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}\\n"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    pairs = (line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return {name.split(":")[0]: version.strip() for name, version in pairs if version.strip()}
