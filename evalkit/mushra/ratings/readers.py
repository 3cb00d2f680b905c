"""Readers of listening-test exports: each returns the ratings it found and one problem per bad record.

- webMUSHRA (`mushra.csv` its service writes): session_test_id, the questionnaire's columns,
  session_uuid, trial_id, rating_stimulus, rating_score, rating_time (ms), rating_comment. A
  listener is a session_uuid (older files without one: the questionnaire answers); an item is a
  trial_id (one page, one reference); a condition is a rating_stimulus, where webMUSHRA names the
  hidden reference `reference` and its generated anchors `anchor35` and `anchor70`.
- BeaqleJS (the JSON a listener downloads, or its service stores): a list with one object per
  test set ({TestID, Runtime in ms, rating: {file key: score}, filename: {file key: path}}) and a
  last object {UserName, UserEmail, UserComment}. One file per listener; the file key `Reference`
  is the hidden reference.
- long (CSV or Parquet): listener (or participant), item, condition, score, optional time
  (seconds on the trial); evalkit's own tidy export is read as it is written.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from ...listening.safetext import FORMULA_START

__all__ = ["Rating", "Reading", "read_webmushra", "read_beaqlejs", "read_long", "LONG_COLUMNS", "WEBMUSHRA_COLUMNS"]

WEBMUSHRA_COLUMNS = (
    "session_test_id",
    "session_uuid",
    "trial_id",
    "rating_stimulus",
    "rating_score",
    "rating_time",
    "rating_comment",
)
_WEBMUSHRA_REQUIRED = ("session_test_id", "trial_id", "rating_stimulus", "rating_score")
LONG_COLUMNS = ("listener", "item", "condition", "score", "time")
# evalkit's tidy export (ratings_frame) adds these; they are read, or ignored where they mean nothing here
_TIDY_COLUMNS = ("participant", "test", "source", "ordinal", "completed", "trial", "kind", "slider", "submitted_at")
# a column that marks webMUSHRA's result file of another test type -> what that file is
_WEBMUSHRA_OTHER_TYPES = {
    "choice_answer": "paired-comparison results (paired_comparison.csv)",
    "rating_reference_score": "BS.1116 results (bs1116.csv)",
    "stimuli_rating": "Likert results (lms.csv or lss.csv)",
    "position_": "spatial results (spatial_*.csv)",
}
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


@dataclass
class Rating:
    where: str  # file and line (or record) for messages
    listener: str
    item: str
    condition: str
    score: float
    time: float | None = None  # seconds the listener spent on the trial
    comment: str | None = None
    kind: str | None = None  # reference | anchor | codec | file, when the file says


@dataclass
class Reading:
    """What a reader found: ratings, problems, the source test ids, listeners' questionnaire answers."""

    ratings: list[Rating] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tests: set[str] = field(default_factory=set)
    answers: dict[str, dict] = field(default_factory=dict)
    decimal_comma: bool = False  # a spreadsheet saving with ; or tabs writes 62,5 for 62.5


def read_webmushra(path: Path) -> Reading:
    reading = Reading()
    with _CsvRows(path, reading) as rows:
        header = next(rows, None)
        if header is None:
            reading.problems.append(f"{path.name}: the file is empty")
            return reading
        header = _header(header, WEBMUSHRA_COLUMNS)
        columns = (
            None if _repeated(path, header, WEBMUSHRA_COLUMNS, reading) else _webmushra_columns(path, header, reading)
        )
        if columns is None:
            return reading
        for row in (_trimmed(row, len(header)) for row in rows):
            if _header(row, WEBMUSHRA_COLUMNS) == header:  # the header again: mushra.csv files joined with cat
                continue
            if len(row) != len(header) and any(cell.strip() for cell in row):
                reading.problems.append(
                    f"{path.name}: line {rows.line_num}: {len(row)} columns, the header has {len(header)}"
                )
            elif any(cell.strip() for cell in row):
                _webmushra_row(path, rows.line_num, dict(zip(header, map(_unescaped, row))), columns, reading)
    return reading


def _webmushra_columns(path: Path, header: list[str], reading: Reading) -> list[str] | None:
    """The questionnaire columns (between session_test_id and session_uuid/trial_id), or None on a bad header."""
    missing = [c for c in _WEBMUSHRA_REQUIRED if c not in header]
    other = next(
        (what for mark, what in _WEBMUSHRA_OTHER_TYPES.items() if any(c.startswith(mark) for c in header)), None
    )
    if missing and other:
        reading.problems.append(
            f"{path.name}: line 1: these are webMUSHRA's {other}; evalkit imports the MUSHRA ratings in mushra.csv"
        )
        return None
    if missing:
        reading.problems.append(
            f"{path.name}: line 1: missing column(s) {', '.join(missing)}; a webMUSHRA "
            f"mushra.csv has {', '.join(WEBMUSHRA_COLUMNS)}"
        )
        return None
    end = header.index("session_uuid") if "session_uuid" in header else header.index("trial_id")
    questionnaire = header[header.index("session_test_id") + 1 : end]
    unknown = [c for c in header[end:] if c not in WEBMUSHRA_COLUMNS]
    if unknown:
        reading.problems.append(
            f"{path.name}: line 1: unknown column(s) {', '.join(unknown)} after the "
            f"questionnaire; known: {', '.join(WEBMUSHRA_COLUMNS)}"
        )
    if "session_uuid" not in header and not questionnaire:
        reading.problems.append(
            f"{path.name}: line 1: no session_uuid and no questionnaire column: listeners cannot be told apart"
        )
        return None
    return questionnaire


def _webmushra_row(path: Path, line: int, row: dict, questionnaire: list[str], reading: Reading) -> None:
    where = f"{path.name}: line {line}"
    answers = {c: _free_text(row.get(c, "")) for c in questionnaire}
    listener = row.get("session_uuid") or "; ".join(f"{k}={v}" for k, v in answers.items())
    score = _number(row.get("rating_score"), where, "rating_score", reading)
    time = _number(row.get("rating_time"), where, "rating_time", reading, optional=True)
    reading.tests.add(row.get("session_test_id", ""))
    reading.answers.setdefault(listener, answers)
    if score is not None and _present(
        where,
        {
            "session_uuid or questionnaire": listener,
            "trial_id": row["trial_id"],
            "rating_stimulus": row["rating_stimulus"],
        },
        reading,
    ):
        reading.ratings.append(
            Rating(
                where,
                listener,
                row["trial_id"],
                row["rating_stimulus"],
                score,
                None if time is None else time / 1000,
                _free_text(row.get("rating_comment")) or None,
            )
        )


def read_beaqlejs(paths: list[Path], item_key: str = "test_id", condition_key: str = "file") -> Reading:
    """BeaqleJS MUSHRA results, one JSON file per listener.

    `item_key`: "test_id" (TestID) or "reference" (the reference file's name without folder and
    suffix); `condition_key`: "file" (the file key of the test set) or "folder" (the folder of the
    rated file, for test sets whose keys differ).
    """
    reading, owners = Reading(), {}
    for path in paths:
        data = _json(path, reading)
        if data is None:
            continue
        user = next((d for d in data if isinstance(d, dict) and "UserName" in d), {})
        listener = str(user.get("UserName") or "").strip() or path.stem
        if listener in owners:
            reading.problems.append(
                f"{path.name}: listener {listener!r} is also the listener of {owners[listener]}; one file per listener"
            )
            continue
        owners[listener] = path.name
        reading.answers[listener] = {k: _free_text(v) for k, v in user.items() if k != "UserName"}
        if _beaqle_other_type(data):
            reading.problems.append(
                f"{path.name}: these are BeaqleJS ABX or preference results; evalkit imports MUSHRA results "
                "(test sets with 'rating')"
            )
            continue
        for index, entry in enumerate(data):
            if isinstance(entry, dict) and "rating" in entry:
                _beaqle_set(path, index, entry, listener, item_key, condition_key, reading)
    return reading


def _beaqle_set(
    path: Path, index: int, entry: dict, listener: str, item_key: str, condition_key: str, reading: Reading
) -> None:
    where = f"{path.name}: [{index}] TestID {entry.get('TestID')!r}"
    ratings, files = entry.get("rating"), entry.get("filename") or {}
    if not isinstance(ratings, dict) or not isinstance(files, dict):
        reading.problems.append(f"{where}: 'rating' and 'filename' must be objects")
        return
    item = (
        PurePosixPath(str(files.get("Reference", ""))).stem
        if item_key == "reference"
        else str(entry.get("TestID") or "")
    )
    runtime = entry.get("Runtime")
    time = runtime / 1000 if isinstance(runtime, (int, float)) and not isinstance(runtime, bool) else None
    for key, value in ratings.items():
        condition = (
            key if condition_key == "file" or key == "Reference" else PurePosixPath(str(files.get(key, ""))).parent.name
        )
        score = _number(value, f"{where} rating {key!r}", "score", reading)
        if score is not None and _present(f"{where} rating {key!r}", {"item": item, "condition": condition}, reading):
            reading.ratings.append(Rating(f"{where} rating {key!r}", listener, item, str(condition), score, time))


def _beaqle_other_type(data: list) -> bool:
    """An ABX result (a true/false per test set) or a preference one (sets with 'Preference'), and no MUSHRA set."""
    other = any(isinstance(d, bool) or (isinstance(d, dict) and "Preference" in d) for d in data)
    return other and not any(isinstance(d, dict) and "rating" in d for d in data)


def read_long(path: Path) -> Reading:
    reading = Reading()
    frame = _long_frame(path, reading)
    if frame is None:
        return reading
    columns = list(frame.columns)
    if "listener" not in columns and "participant" in columns:
        frame = frame.rename(columns={"participant": "listener"})
        columns = list(frame.columns)
    missing = [c for c in LONG_COLUMNS[:4] if c not in columns]
    unknown = [c or "(a column without a name)" for c in columns if c not in LONG_COLUMNS + _TIDY_COLUMNS]
    if missing or unknown:
        text = [f"missing column(s) {', '.join(missing)}"] if missing else []
        text += [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        reading.problems.append(
            f"{path.name}: {'line 1' if path.suffix.lower() == '.csv' else 'columns'}: "
            f"{'; '.join(text)}; a long table has {', '.join(LONG_COLUMNS)} (time optional)"
        )
        return reading
    for number, row in zip(frame.index, frame.to_dict("records")):
        _long_row(path, number, row, reading)
    return reading


def _long_row(path: Path, number: int, row: dict, reading: Reading) -> None:
    where = f"{path.name}: {'line' if path.suffix.lower() == '.csv' else 'row'} {number}"
    score = _number(row["score"], where, "score", reading)
    time = _number(row.get("time"), where, "time", reading, optional=True)
    texts = {c: _text(row[c]) for c in ("listener", "item", "condition")}
    if "test" in row and _text(row["test"]):
        reading.tests.add(_text(row["test"]))
    if score is not None and _present(where, texts, reading):
        reading.ratings.append(
            Rating(
                where,
                texts["listener"],
                texts["item"],
                texts["condition"],
                score,
                time,
                kind=_text(row.get("kind")) or None,
            )
        )


def _long_frame(path: Path, reading: Reading) -> pd.DataFrame | None:
    """The table as text cells (CSV keeps '007' an item id), indexed by the line or row number."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            frame.index = range(1, len(frame) + 1)
            return frame
        if path.suffix.lower() != ".csv":
            reading.problems.append(f"{path.name}: a long table is .csv or .parquet")
            return None
        known, header, records = len(reading.problems), None, []
        with _CsvRows(path, reading) as rows:
            header = next(rows, None)
            header = None if header is None else _header(header, LONG_COLUMNS + _TIDY_COLUMNS)
            width = 0 if header is None else len(header)
            records = [
                (rows.line_num, [_unescaped(cell) for cell in _trimmed(row, width)])
                for row in rows
                if any(cell.strip() for cell in row)
            ]
    except (OSError, ValueError) as err:
        reading.problems.append(f"{path.name}: cannot read it ({err})")
        return None
    if len(reading.problems) > known:  # not UTF-8 or not CSV: said once by _CsvRows
        return None
    if header is None:
        reading.problems.append(f"{path.name}: the file is empty")
        return None
    if _repeated(path, header, LONG_COLUMNS + _TIDY_COLUMNS, reading):
        return None
    header, records = _without_blank_columns(header, records)
    bad = [line for line, row in records if len(row) != len(header)]
    if bad:
        reading.problems += [f"{path.name}: line {line}: {len(header)} columns expected" for line in bad]
        records = [(line, row) for line, row in records if len(row) == len(header)]
    return pd.DataFrame([row for _, row in records], columns=header, index=[line for line, _ in records], dtype=object)


class _CsvRows:
    """A csv reader over a UTF-8 file (BOM tolerated) that reports unreadable files as a problem."""

    def __init__(self, path: Path, reading: Reading):
        self.path, self.reading = path, reading

    def __enter__(self):
        with open(self.path, "rb") as raw:
            delimiter = _delimiter(raw.readline(1 << 16).decode("utf-8", "replace"))
        self.reading.decimal_comma = delimiter != ","  # a comma that does not separate cells is a decimal one
        self.handle = open(self.path, newline="", encoding="utf-8-sig")
        return csv.reader(self.handle, delimiter=delimiter)

    def __exit__(self, kind, error, trace):
        self.handle.close()
        if isinstance(error, (UnicodeDecodeError, csv.Error)):
            self.reading.problems.append(
                f"{self.path.name}: not a readable UTF-8 CSV file ({error}); save it as 'CSV UTF-8'"
            )
            return True
        return False


def _delimiter(first_line: str) -> str:
    """',' unless the header line is clearly ';'- or tab-separated (spreadsheets in many locales save so)."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _header(cells: list[str], known: tuple[str, ...]) -> list[str]:
    """Header cells stripped, known names in any case made lower case, empty trailing cells (a spreadsheet's) dropped."""
    names = [cell.strip().lower() if cell.strip().lower() in known else cell.strip() for cell in cells]
    while names and not names[-1]:
        names.pop()
    return names


def _repeated(path: Path, header: list[str], known: tuple[str, ...], reading: Reading) -> bool:
    """A known column named twice is a problem: which of the two holds the ratings cannot be told."""
    twice = sorted({name for name in header if name in known and header.count(name) > 1})
    if twice:
        reading.problems.append(f"{path.name}: line 1: column(s) {', '.join(twice)} appear more than once; keep one")
    return bool(twice)


def _without_blank_columns(header: list[str], records: list) -> tuple[list[str], list]:
    """Columns without a name and without a value (a spreadsheet's blank column) left out."""
    blank = {
        k
        for k, name in enumerate(header)
        if not name and all(k >= len(row) or not row[k].strip() for _, row in records)
    }
    if not blank:
        return header, records
    keep = [k for k in range(len(header)) if k not in blank]
    return [header[k] for k in keep], [
        (line, [row[k] for k in keep] if len(row) == len(header) else row) for line, row in records
    ]


def _trimmed(row: list[str], width: int) -> list[str]:
    """A row without the empty cells a spreadsheet writes past the last named column."""
    return row[:width] if len(row) > width and not any(cell.strip() for cell in row[width:]) else row


def _unescaped(cell: str) -> str:
    """A cell as it was before an export kept a spreadsheet from running it ('=x -> =x), so names round-trip."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1:2] in FORMULA_START else cell


def _json(path: Path, reading: Reading) -> list | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reading.problems.append(f"{path.name}: not a readable JSON file ({err})")
        return None
    if not isinstance(data, list):
        reading.problems.append(f"{path.name}: a BeaqleJS result is a JSON list of test sets")
        return None
    return data


def _number(value, where: str, column: str, reading: Reading, optional: bool = False) -> float | None:
    text = _text(value)
    if text == "":
        if not optional:
            reading.problems.append(f"{where}: {column} is empty")
        return None
    if reading.decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        reading.problems.append(f"{where}: {column} {text!r} is not a number")
        return None
    return number


def _present(where: str, values: dict[str, str], reading: Reading) -> bool:
    empty = [name for name, value in values.items() if not value]
    if empty:
        reading.problems.append(f"{where}: {', '.join(empty)} is empty")
    return not empty


def _free_text(value):
    """A comment or answer without NUL characters, which no text column of PostgreSQL can hold."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()
