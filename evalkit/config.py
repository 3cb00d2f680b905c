"""Reading the YAML files users write (codec cards, experiments, test definitions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

# libyaml's parser when PyYAML has it: the same safe subset, parsed several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["read_yaml", "check_keys"]


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed file; an unreadable file or bad YAML is a ConfigError naming it."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read {what} ({err})") from None


def check_keys(data: dict, allowed: set[str], source: str) -> None:
    """Refuse keys the format does not know: a typo must not be silently ignored."""
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
