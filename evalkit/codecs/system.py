"""What the operating system provides to codec backends: Debian package versions."""

from __future__ import annotations

import subprocess
from functools import lru_cache

__all__ = ["debian_version"]


@lru_cache(maxsize=None)
def debian_version(package: str) -> str:
    """The installed Debian package's version (stored with results), or "unknown version"."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown version"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown version"
