"""Conditions made elsewhere: decoded files, and bitstream files, matched to items by id.

A condition is anything that yields decoded audio for an item. Codec cards encode and decode in
evalkit; a `DecodedCondition` names files someone else made: decoded audio (a folder, a pattern
with {id}, or a JSONL manifest of {id, deg}), optionally with the bitstreams behind it (their
sizes give the bitrate), or evalkit bitstream files that a card decodes. Files are matched to
items by id and the matching is reported per item: missing, extra, ambiguous. An item's
identity is the content hash of its files, so a changed file is rescored and the rest is not.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .audio import Audio, load
from .audio import downmix as downmix_audio
from .cards import Card
from .config import Checker, describe
from .datasets import AUDIO_SUFFIXES, UNREAD_AUDIO_SUFFIXES, check_inside, read_lines
from .errors import AudioError, ConfigError

__all__ = [
    "DecodedCondition",
    "ItemFiles",
    "Matching",
    "Rendered",
    "condition_from_config",
    "match_files",
    "render",
    "DECODED_COST",
    "ID_FIELD",
]

DECODED_COST = ("bitrate_kbps",)  # what a condition made elsewhere can still be measured on
ID_FIELD = "{id}"
_KEYS = {"name", "decoded", "files", "bitstreams", "bitrate_kbps", "card"}  # `files`: MUSHRA's name for `decoded`
_SHOWN = 5  # items named in a one-line report before "..."
# A decoded file may last this many times its reference, plus 10 s (generous: alignment refuses 20 %).
LONGEST_DECODED = 2.0


@dataclass(frozen=True)
class ItemFiles:
    """One item's files in one condition, or why it has none; `identity` changes with their content."""

    deg: Path | None = None
    bitstream: Path | None = None
    problem: str | None = None
    identity: str | None = None


@dataclass(frozen=True)
class Matching:
    """Files matched to item ids, and what did not match."""

    files: dict[str, Path]
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodedCondition:
    """Decoded audio (and/or bitstreams) made outside evalkit, scored under `name` like a codec."""

    name: str
    decoded: str | tuple | None = None  # folder, {id} pattern, .jsonl manifest of {id, deg}, or ((id, path), ...)
    bitstreams: str | tuple | None = None  # the same forms; a manifest's lines give {id, bitstream}
    bitrate_kbps: float | None = None  # declared, when there are no bitstreams to measure
    card: Card | None = None  # decodes `bitstreams` written by `evalkit encode`
    base: Path = Path(".")  # relative paths start here (the experiment's folder)
    allow_outside: bool = False  # files a manifest or folder names may lie outside it

    @property
    def config_hash(self) -> str:
        """The same for every item; what changes an item's scores is in its `ItemFiles.identity`."""
        key = {"condition": "files", "card": self.card.config_hash if self.card else None}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def cost_metrics(self) -> tuple[str, ...]:
        return DECODED_COST

    def match(self, items: list, digest: Callable[[Path], str]) -> tuple[dict[str, ItemFiles], dict[str, dict]]:
        """Each item's files (or the problem), and the matching report as run warnings."""
        ids = [item.id for item in items]
        matchings, warnings = {}, {}
        for role, source, suffixes, key in (
            ("decoded", self.decoded, AUDIO_SUFFIXES, "deg"),
            ("bitstreams", self.bitstreams, None, "bitstream"),
        ):
            if source is not None:
                matchings[role] = match_files(source, self.base, ids, suffixes, key, self.allow_outside)
                warnings.update(_report(self.name, role, _source_text(source), matchings[role], len(ids)))
        return {item.id: self._item_files(item, matchings, digest) for item in items}, warnings

    def _item_files(self, item, matchings: dict[str, Matching], digest: Callable[[Path], str]) -> ItemFiles:
        paths, problems = {}, []
        for role, matching in matchings.items():
            source = getattr(self, role)
            if item.id in matching.ambiguous:
                problems.append(
                    f"{role}: item {item.id} matches several files in {_source_text(source)}: "
                    f"{', '.join(matching.ambiguous[item.id])}"
                )
            elif item.id not in matching.files:
                hint = _unread_hint(source, self.base, item.id) if role == "decoded" else ""
                problems.append(f"{role}: no file for item {item.id} in {_source_text(source)}{hint}")
            else:
                paths[role] = matching.files[item.id]
        parts = [digest(item.path) if item.path.is_file() else "no reference file", str(self.bitrate_kbps)]
        parts += [f"{role}:{digest(path)}" for role, path in sorted(paths.items())]
        identity = hashlib.sha256("|".join(parts + problems).encode()).hexdigest()
        return ItemFiles(paths.get("decoded"), paths.get("bitstreams"), "; ".join(problems) or None, identity)


def condition_from_config(
    entry: dict, cards: dict[str, Card], base: Path, check: Checker | str, key: str = "", allow_outside: bool = False
) -> DecodedCondition:
    """A `{name, decoded | bitstreams, bitrate_kbps?, card?}` entry of an experiment's codecs list,
    at `key` of the file `check` reads."""
    check = Checker(check) if isinstance(check, str) else check
    entry = dict(check.mapping(entry, key, _KEYS))
    if "files" in entry:
        if "decoded" in entry:
            check.fail(f"{key}.files", "'files' and 'decoded' are the same key; give one")
        entry["decoded"] = entry.pop("files")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or "@" in name or name != name.strip():
        check.fail(
            f"{key}.name",
            f"'name' is required: a non-empty name without '@' or surrounding spaces, got {describe(name)}",
        )
    if name in cards:
        check.fail(f"{key}.name", f"{name!r} is the name of a codec card; give files made elsewhere another name")
    if "decoded" not in entry and "bitstreams" not in entry:
        check.fail(key, "give 'decoded' (files of decoded audio) and/or 'bitstreams'")
    decoded = _files_source(check, entry.get("decoded"), f"{key}.decoded")
    bitstreams = _files_source(check, entry.get("bitstreams"), f"{key}.bitstreams")
    card = _decoding_card(check, entry, cards, key)
    bitrate = entry.get("bitrate_kbps")
    if bitrate is not None:
        bitrate = check.number(bitrate, f"{key}.bitrate_kbps", above=0)
        if bitstreams is not None:
            check.fail(
                f"{key}.bitrate_kbps",
                "give 'bitrate_kbps' or 'bitstreams', not both (the bitstreams' sizes measure it)",
            )
    return DecodedCondition(name, decoded, bitstreams, bitrate, card, Path(base), allow_outside)


def _files_source(check: Checker, value, key: str) -> str | tuple | None:
    """A folder, pattern or manifest (a string), or a mapping item id -> path (kept as pairs)."""
    if value is None:
        return None
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items())
    ):
        return tuple(sorted(value.items()))
    if isinstance(value, str) and value:
        return value
    check.fail(
        key,
        f"expected a folder, a pattern with {ID_FIELD}, a .jsonl manifest or a mapping item id -> file, "
        f"got {describe(value)}",
    )


def _source_text(source: str | tuple) -> str:
    return "the listed files" if isinstance(source, tuple) else source


def _decoding_card(check: Checker, entry: dict, cards: dict[str, Card], key: str) -> Card | None:
    if "card" not in entry:
        if "decoded" not in entry:
            check.fail(
                key,
                "bitstreams alone need a 'card' that decodes them (files written by 'evalkit encode'); "
                "otherwise give the 'decoded' files beside them",
            )
        return None
    if "bitstreams" not in entry or "decoded" in entry:
        check.fail(
            f"{key}.card",
            "'card' decodes 'bitstreams' (files written by 'evalkit encode'); with 'decoded' "
            "files there is nothing to decode",
        )
    name = check.text(entry["card"], f"{key}.card", required=True)
    if name not in cards:
        check.fail(f"{key}.card", f"unknown codec {name!r}; run 'evalkit codecs' to list them")
    return cards[name]


# -- matching ------------------------------------------------------------------------------


def match_files(
    source: str | dict | tuple,
    base: Path,
    ids: list[str],
    suffixes: tuple[str, ...] | None = AUDIO_SUFFIXES,
    key: str = "deg",
    allow_outside: bool = False,
) -> Matching:
    """Files for item `ids` from a folder (by relative path or file stem), a pattern with {id}
    (or {item}), a JSONL manifest whose lines give "id" and `key`, or a mapping id -> path.
    The files a manifest names must lie inside its folder unless `allow_outside`."""
    if not isinstance(source, str):
        listed = dict(source)
        matching = _settle({i: [base / listed[i]] if i in listed else [] for i in ids}, [], base, listed=True)
        return Matching(matching.files, matching.missing, tuple(f"id {i!r}" for i in listed if i not in set(ids)))
    source = source.replace("{item}", ID_FIELD)
    if source.endswith(".jsonl"):
        return _from_manifest(base / source, ids, key, allow_outside)
    if ID_FIELD in source:
        return _from_pattern(base, source, ids, suffixes)
    folder = base / source
    if folder.is_file():
        raise ConfigError(_file_for_folder(folder, suffixes))
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder; give a folder, a pattern with {ID_FIELD}, or a .jsonl manifest")
    return _from_folder(folder, ids, suffixes)


def _unread_hint(source: str | tuple, base: Path, item_id: str) -> str:
    """For an item without a decoded file in a folder: a file of its name there that evalkit does
    not read (an .mp3), which would otherwise look like a matching bug. Only the item's own place
    is looked at, so a folder of thousands costs one listing per missing item, not a walk."""
    if not isinstance(source, str) or not (place := base / source / item_id).parent.is_dir():
        return ""  # a mapping, a manifest or a pattern: the file was named, not searched for
    candidates = place.parent.glob(f"{glob.escape(place.name)}.*")
    unread = sorted(p.name for p in candidates if p.suffix.lower() in UNREAD_AUDIO_SUFFIXES and p.is_file())
    return f" ({unread[0]} is there: evalkit reads {', '.join(AUDIO_SUFFIXES)}; convert it)" if unread else ""


def _file_for_folder(path: Path, suffixes: tuple[str, ...] | None) -> str:
    """What to do with a file given where a folder of files is expected (an .mp3 is the usual one)."""
    if suffixes and path.suffix.lower() not in suffixes:
        kind = path.suffix or "a file without a suffix"
        return (
            f"{path}: evalkit reads decoded audio as {', '.join(suffixes)}, not {kind}; convert it "
            f"(e.g. ffmpeg -i {path.name} {path.stem}.wav)"
        )
    return f"{path}: is a file; give a folder, a pattern with {ID_FIELD}, or a .jsonl manifest"


def _from_folder(folder: Path, ids: list[str], suffixes: tuple[str, ...] | None) -> Matching:
    files = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and (suffixes is None or p.suffix.lower() in suffixes)
    ]
    by_path: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    by_head: dict[str, list[Path]] = {}
    for path in files:
        by_path.setdefault(path.relative_to(folder).with_suffix("").as_posix(), []).append(path)
        by_stem.setdefault(path.stem, []).append(path)
        by_head.setdefault(path.name.split(".", 1)[0], []).append(path)
    # An item matches its relative path (without suffix), else a file named like its last part,
    # else one whose name before the first dot is that part ("a.dec.wav", "a.opus.wav").
    candidates = {}
    for item_id in ids:
        last = item_id.rsplit("/", 1)[-1]
        candidates[item_id] = by_path.get(item_id) or by_stem.get(last) or by_head.get(last, [])
    return _settle(candidates, files, folder)


def _from_pattern(base: Path, pattern: str, ids: list[str], suffixes: tuple[str, ...] | None) -> Matching:
    """Files named by `pattern`; one without an audio suffix ("out/{id}_decoded") takes any of `suffixes`."""
    cut = pattern.split(ID_FIELD, 1)[0].rfind("/") + 1  # the fixed folder before the first {id}
    root, rest = base / pattern[:cut], pattern[cut:]
    endings = [""] if not suffixes or Path(pattern).suffix.lower() in suffixes else list(suffixes)
    candidates = {
        i: [p for end in endings if (p := base / (pattern.replace(ID_FIELD, i) + end)).is_file()] for i in ids
    }
    ending = "" if endings == [""] else f"(?:{'|'.join(re.escape(end) for end in endings)})"
    regex = re.compile(
        re.escape(rest).replace(re.escape(ID_FIELD), "(?P<id>.+)", 1).replace(re.escape(ID_FIELD), "(?P=id)") + ending
    )
    files = (
        [p for p in sorted(root.rglob("*")) if p.is_file() and regex.fullmatch(p.relative_to(root).as_posix())]
        if root.is_dir()
        else []
    )
    return _settle(candidates, files, root)


def _from_manifest(path: Path, ids: list[str], key: str, allow_outside: bool) -> Matching:
    """Lines {"id", key}; a listed file that does not exist fails when its item is loaded, naming it."""
    entries: dict[str, list[Path]] = {}
    for number, line in read_lines(path, "manifest"):
        try:
            entry = json.loads(line)
            item_id, file = entry["id"], entry.get(key, entry.get("path"))
            if (
                isinstance(item_id, bool)
                or not isinstance(item_id, (str, int))
                or not isinstance(file, str)
                or not file
            ):
                raise KeyError(key)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"{path}:{number}: each line must be a JSON object with 'id' and '{key}' (the file's path, a string)"
            ) from None
        full = check_inside(Path(file), path.parent, f"{path}:{number}: {key}", allow_outside)
        entries.setdefault(str(item_id), []).append(full)
    matching = _settle({i: entries.get(i, []) for i in ids}, [], path.parent, listed=True)
    wanted = set(ids)
    extra = tuple(f"id {i!r}" for i in entries if i not in wanted)
    return Matching(matching.files, matching.missing, extra, matching.ambiguous)


def _settle(candidates: dict[str, list[Path]], files: list[Path], root: Path, listed: bool = False) -> Matching:
    """One file per item; an item with several files is ambiguous, and so is a file that several
    items found by name (unless `listed`: a manifest that names one file twice means it)."""
    claims: dict[Path, list[str]] = {}
    for item_id, paths in candidates.items():
        for path in paths:
            claims.setdefault(path, []).append(item_id)
    matched, ambiguous, missing = {}, {}, []
    for item_id, paths in candidates.items():
        if not paths:
            missing.append(item_id)
        elif len(paths) > 1:
            ambiguous[item_id] = tuple(_shown(p, root) for p in paths)
        elif len(claims[paths[0]]) > 1 and not listed:
            ambiguous[item_id] = (
                f"{_shown(paths[0], root)} (also matches {', '.join(i for i in claims[paths[0]] if i != item_id)})",
            )
        else:
            matched[item_id] = paths[0]
    extra = tuple(_shown(p, root) for p in files if p not in claims)
    return Matching(matched, tuple(missing), extra, ambiguous)


def suggested_pattern(folder: str, matching: Matching) -> str | None:
    """A pattern with {id} that would match the folder's unmatched files to the unmatched items,
    when their names are the ids with the same text around them ("a_decoded.wav" for item "a"):
    the first thing a user with other names needs. None when no one pattern explains them."""
    if ID_FIELD in folder or folder.endswith(".jsonl"):
        return None
    missing = sorted(matching.missing, key=len, reverse=True)  # the longest id a name holds is the item
    shapes: dict[tuple[str, str], dict[str, set[str]]] = {}  # (before, after) -> suffix -> items
    for shown in matching.extra:
        stem, dot, suffix = shown.rpartition(".")
        stem, suffix = (stem, dot + suffix) if dot and "/" not in suffix else (shown, "")
        item_id = next((i for i in missing if stem.count(i) == 1), None)
        if item_id is not None:
            before, after = stem.split(item_id)
            shapes.setdefault((before, after), {}).setdefault(suffix, set()).add(item_id)
    if not shapes:
        return None
    (before, after), by_suffix = max(shapes.items(), key=lambda shape: len(set().union(*shape[1].values())))
    if 2 * len(set().union(*by_suffix.values())) < len(missing):  # a pattern for a few files says little
        return None
    # One suffix is written out; audio in several formats is matched by a pattern without one.
    suffix = next(iter(by_suffix)) if len(by_suffix) == 1 else ""
    return f"{folder.rstrip('/')}/{before}{ID_FIELD}{after}{suffix}"


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _report(name: str, role: str, source: str, matching: Matching, total: int) -> dict[str, dict]:
    """The matching as run warnings: {key: {"text", "items"}}."""
    out = {}
    if matching.missing:
        out[f"match:{name}:{role}:missing"] = {
            "text": f"{name}: {len(matching.missing)} of {total} items have no {role} file in {source}",
            "items": list(matching.missing),
        }
    if matching.ambiguous:
        out[f"match:{name}:{role}:ambiguous"] = {
            "text": f"{name}: {len(matching.ambiguous)} items match several {role} files in {source}",
            "items": [f"{i} ({'; '.join(files)})" for i, files in sorted(matching.ambiguous.items())],
        }
    if matching.extra:
        out[f"match:{name}:{role}:extra"] = {
            "text": f"{name}: {len(matching.extra)} {role} files in {source} match no item",
            "items": list(matching.extra),
        }
    if pattern := suggested_pattern(source, matching):
        out[f"match:{name}:{role}:pattern"] = {
            "text": f"{name}: the unmatched {role} files are named like {pattern!r}: give that pattern to match them"
        }
    return out


# -- rendering (worker side) ---------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """An item's decoded audio from files, and what could be measured of its cost."""

    audio: Audio
    bitrate: float | None  # bit/s: measured from bitstreams, else as declared, else None
    total_bitrate: float | None
    decode_seconds: float | None
    version: str  # what made the audio, stored as the round trip's codec_version
    waveform: bool | None  # None: unknown (align automatically)
    declared_delay: int | None  # samples at the decoder's rate, when a card decoded it
    tolerance: int  # samples at the item's rate the measured lag may miss the declared one by


def render(condition: DecodedCondition, files: ItemFiles, ref: Audio, downmix: bool) -> Rendered:
    """Load (or decode) one item's files; errors are EvalkitErrors naming the file."""
    if condition.card is not None:
        return _decode_bitstream(condition.card, _existing(files.bitstream, ref.id), ref)
    if files.deg is None:
        raise AudioError(f"item {ref.id!r}: this condition has no decoded file for it")
    # A decoded file far longer than its item is another file (a mismatch, a concatenation): refused
    # before it is read, so a wrong file cannot take the run's memory.
    audio = load(files.deg, id=ref.id, max_seconds=LONGEST_DECODED * ref.duration + 10.0)
    audio = downmix_audio(audio) if downmix else audio
    bits = _existing(files.bitstream, ref.id).stat().st_size * 8 if files.bitstream is not None else None
    declared = condition.bitrate_kbps * 1000 if condition.bitrate_kbps is not None else None
    bitrate = bits / ref.duration if bits is not None else declared
    version = "decoded files" + (
        ", bitrate from bitstream sizes" if bits is not None else ", bitrate declared" if declared is not None else ""
    )
    return Rendered(audio, bitrate, bitrate, None, version, None, None, 0)


def _existing(path: Path | None, item: str | None) -> Path:
    if path is None:
        raise AudioError(f"item {item!r}: this condition has no file for it")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    return path


def _decode_bitstream(card: Card, path: Path, ref: Audio) -> Rendered:
    from .codecs.bitstream import Bitstream
    from .harness import delay_tolerance

    codec = card.build(ref.sample_rate)
    info = codec.info
    data = path.read_bytes()
    start = time.perf_counter()
    decoded = codec.decode(data)
    seconds = time.perf_counter() - start
    frames = decoded.frames - info.lookahead_samples
    audio = Audio(decoded.samples[:, info.lookahead_samples :], info.sample_rate, ref.id)  # AudioError if empty
    duration = frames / info.sample_rate
    payload = Bitstream.from_bytes(data, codec.backend).payload_bytes
    tolerance = delay_tolerance(info, ref.sample_rate)
    return Rendered(
        audio,
        8 * payload / duration,
        8 * len(data) / duration,
        seconds,
        info.version,
        info.waveform_matching,
        info.lookahead_samples,
        tolerance,
    )
