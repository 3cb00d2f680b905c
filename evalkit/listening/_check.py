"""Small validators that name the file and the key in every message (``demo.yaml: items[2].end: ...``)."""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from ..errors import ConfigError

__all__ = ["Checker"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class Checker:
    """Collects warnings and raises ConfigError for one definition file."""

    def __init__(self, source: str):
        self.source = source
        self.warnings: list[str] = []

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {key or 'top level'}: {message}")

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, got {type(value).__name__}")
        prefix = f"{key}." if key else ""
        if unknown := sorted(set(map(str, value)) - allowed):
            self.fail(f"{prefix}{unknown[0]}", f"unknown key; allowed here: {', '.join(sorted(allowed))}")
        for name in required:
            if name not in value:
                self.fail(f"{prefix}{name}", "is required")
        return value

    def name(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            self.fail(key, f"{value!r} must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    def text(self, value: Any, key: str, required: bool = False) -> str:
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(key, "must be a non-empty string" if required else "must be a string")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, value: Any, key: str, low: float | None = None, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low:g} to {high:g}" if low is not None and high is not None else (
                f"at least {low:g}" if low is not None else f"at most {high:g}")
            self.fail(key, f"{value!r} is outside the range: {bounds}")
        return float(value)

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, got {value!r}")
        if not low <= value <= high:
            self.fail(key, f"{value} is outside {low} to {high}")
        return value
