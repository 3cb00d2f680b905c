"""Reading and checking what users write: codec cards, experiments, test definitions, training
configs and manifest lines go through one YAML reader and one checker.

Every error is one ConfigError line naming the file, the line (when it came from a file) and the
key, and saying what is expected: ``exp.yaml:7: codecs[0]: expected a codec card name ..., got 42``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

import yaml

from .errors import ConfigError, first_line

__all__ = [
    "read_yaml",
    "read_document",
    "parse_document",
    "read_text",
    "Document",
    "Checker",
    "describe",
    "did_you_mean",
    "NAME_PATTERN",
]

# libyaml's parser when PyYAML has it: the same safe subset, parsed several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SHOWN = 60  # characters of a bad value quoted in a message
# Values a document may hold once its aliases are expanded: far above any real file, far below what
# a "billion laughs" of nested aliases makes every later walk of the data (messages, hashes) cost.
MAX_EXPANDED_VALUES = 100_000


@dataclass(frozen=True)
class Document:
    """A parsed YAML file and the line each key path starts on (``codecs[0].sweep``: 7)."""

    data: Any
    source: str
    lines: dict[str, int] = field(default_factory=dict)

    def checker(self) -> Checker:
        return Checker(self.source, self.lines)


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed file; an unreadable file or bad YAML is a one-line ConfigError naming it."""
    return read_document(path, what).data


def read_document(path: str | Path, what: str) -> Document:
    """The parsed file with its key lines; a key given twice in one mapping is an error (YAML
    would silently keep the last)."""
    path = Path(path)
    return parse_document(read_text(path, what), str(path), what)


def parse_document(text: str | bytes, source: str, what: str) -> Document:
    """YAML text from `source` (a file name, an upload's name), checked as read_document checks a file."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: cannot read {what}: not UTF-8 text") from None
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is not None and (size := _expanded_size(node, {})) > MAX_EXPANDED_VALUES:
            raise ConfigError(
                f"{source}: cannot read {what}: its aliases (*name) expand to {size:,} values, more than "
                f"{MAX_EXPANDED_VALUES:,}; write the values out or use fewer nested aliases"
            )
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error(source, what, err)) from None
    except RecursionError:
        raise ConfigError(f"{source}: cannot read {what}: nested too deeply") from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _key_lines(node, "", lines, set(), source)
    return Document(data, source, lines)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the node holds with every alias expanded, counted once per distinct node
    (an alias of an alias multiplies); a node that contains itself counts once."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # while being counted: a self-reference adds one, not forever
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
    total = 1
    for child in children:
        total += _expanded_size(child, sizes)
        if total > MAX_EXPANDED_VALUES:
            break  # enough to refuse; the rest need not be counted
    sizes[id(node)] = total
    return total


def read_text(path: Path, what: str) -> str:
    """A text file users wrote; a missing, unreadable or non-UTF-8 file is one line naming it.
    A byte-order mark (Windows editors write one) is not part of the text. A device or a pipe
    (/dev/zero, a FIFO: reading one never ends) is refused before it is opened."""
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise ConfigError(f"{path}: is not a regular file (a device or pipe?); give the {what} file itself")
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what} file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read {what}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror or err})") from None


def _yaml_error(path: str, what: str, err: yaml.YAMLError) -> str:
    """One line: where the parser stopped and why."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(err, "problem", None) or first_line(err)
    context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and start is not None and start is not mark:
        context += f" that starts at line {start.line + 1}"
    return f"{where}: cannot read {what}: invalid YAML ({problem}{f', {context}' if context else ''})"


def _key_lines(node: yaml.Node, key: str, lines: dict[str, int], seen: set[int], source: str) -> None:
    """Record the line of every key path; each node is walked once (aliases may share nodes)."""
    lines.setdefault(key, node.start_mark.line + 1)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        names: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            child = f"{key}.{key_node.value}" if key else key_node.value
            if key_node.value in names:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: {child}: given twice; keep one")
            names.add(key_node.value)
            _key_lines(value_node, child, lines, seen, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, value_node in enumerate(node.value):
            _key_lines(value_node, f"{key}[{index}]", lines, seen, source)


class Checker:
    """Checks one file's values and raises a one-line ConfigError naming the file, the line and
    the key; collects advice that does not stop anything as `warnings`."""

    def __init__(self, source: str, lines: dict[str, int] | None = None):
        self.source = source
        self.lines = lines or {}
        self.warnings: list[str] = []

    def where(self, key: str) -> str:
        """``file:line: key`` (the line of the key, or of the nearest enclosing one known)."""
        line = self._line(key)
        place = f"{self.source}:{line}" if line is not None else self.source
        return f"{place}: {key}" if key else place

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.where(key)}: {message}")

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"{self.where(key)}: {message}")

    def _line(self, key: str) -> int | None:
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            cut = max(key.rfind("."), key.rfind("["))
            key = key[: max(cut, 0)]

    def mapping(
        self,
        value: Any,
        key: str,
        allowed: set[str],
        required: tuple[str, ...] = (),
        unlisted: frozenset[str] = frozenset(),
    ) -> dict:
        """`value` as a mapping of `allowed` keys; `unlisted` ones are accepted but not offered to people
        (keys evalkit writes itself)."""
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, got {describe(value)}")
        prefix = f"{key}." if key else ""
        if unknown := sorted(set(map(str, value)) - allowed):
            offered = allowed - unlisted
            self.fail(
                f"{prefix}{unknown[0]}",
                f"unknown key{did_you_mean(unknown[0], offered)}; allowed here: {', '.join(sorted(offered))}",
            )
        for name in required:
            if name not in value:
                self.fail(f"{prefix}{name}", "is required")
        return value

    def name(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not NAME_PATTERN.match(value):
            self.fail(
                key,
                f"{describe(value)} must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        return value

    def text(self, value: Any, key: str, required: bool = False) -> str:
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(
                key,
                f"must be a non-empty string, got {describe(value)}"
                if required
                else f"must be a string, got {describe(value)}",
            )
        return value

    def texts(self, value: Any, key: str, what: str) -> list[str]:
        """A non-empty list of non-empty strings (`what` names one, for the message)."""
        if not isinstance(value, list) or not value:
            hint = f" (write [{value}] for one)" if isinstance(value, str) else ""
            self.fail(key, f"must be a non-empty list of {what}s{hint}, got {describe(value)}")
        for index, entry in enumerate(value):
            self.text(entry, f"{key}[{index}]", required=True)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {describe(value)}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(key, f"{describe(value)} is not one of {', '.join(choices)}")
        return value

    def number(
        self, value: Any, key: str, low: float | None = None, high: float | None = None, above: float | None = None
    ) -> float:
        """A finite number within [low, high] (and greater than `above`, when given)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a number, got {describe(value)}")
        if above is not None and value <= above:
            self.fail(key, f"must be above {above:g}, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (
                f"{low:g} to {high:g}"
                if low is not None and high is not None
                else (f"at least {low:g}" if low is not None else f"at most {high:g}")
            )
            self.fail(key, f"{value!r} is outside the range: {bounds}")
        return float(value)

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, got {describe(value)}")
        if not low <= value <= high:
            self.fail(key, f"{value} is outside {low} to {high}")
        return value


def describe(value: Any) -> str:
    """A bad value as a message shows it: short, with its type when that is the problem."""
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'} {_short(repr(value))}"
    return _short(repr(value))


def did_you_mean(name: str, known) -> str:
    """The end of a message for a likely typo of one of `known`: " (did you mean 'x'?)", else ""."""
    from difflib import get_close_matches

    close = get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _stored_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value  # JSON has no tuples


def dataclass_from_dict(cls: type, data: dict, what: str, value=_stored_value) -> Any:
    """The dataclass `cls` from a stored mapping (a model's architecture, say), each value passed
    through `value`; a key `cls` does not have is a ConfigError naming `what`."""
    known = {f.name for f in fields(cls)}
    if unknown := sorted(set(data) - known):
        raise ConfigError(f"{what}: unknown config keys {unknown}; known: {sorted(known)}")
    return cls(**{key: value(item) for key, item in data.items()})
