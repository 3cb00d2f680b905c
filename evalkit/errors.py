"""One family of exceptions; every message names the item or file it is about."""

import re

__all__ = [
    "EvalkitError",
    "AudioError",
    "CodecError",
    "MetricError",
    "ConfigError",
    "UnavailableError",
    "failure_line",
    "first_line",
    "terminal_safe",
]


class EvalkitError(Exception):
    """Base of every error evalkit raises on purpose; the CLI prints it as one line."""


class AudioError(EvalkitError):
    """Audio that cannot be read, is empty, non-finite or otherwise unusable."""


class CodecError(EvalkitError):
    """A codec failed to encode, or a bitstream is foreign, truncated or corrupt."""


class MetricError(EvalkitError):
    """A metric could not produce a score for an item."""


class ConfigError(EvalkitError):
    """A codec card, experiment or test definition is invalid."""


class UnavailableError(EvalkitError):
    """A backend's library is missing; the message says how to install it."""


def failure_line(err: BaseException, limit: int = 300) -> str:
    """`Type: message` of a library's exception on one line: its first line, shortened (numba and
    torch put source excerpts and tables in theirs, which a one-line error must not carry)."""
    text = first_line(err, limit)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first non-blank line of an exception's message, shortened to `limit` characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """`text` with control characters written out (ESC as \\x1b, a newline as \\n): an item id or card name
    from someone else's file must not move the cursor, recolour or clear the terminal, or break a table's rows."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)
