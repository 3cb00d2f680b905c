"""Align two timed phone sequences in content and time; phone error rate and edit runs.

The cost is Levenshtein's (substitution, insertion, deletion = 1) plus a time term: pairing
two phones that do not overlap costs up to TIME_WEIGHT more, and phones further apart than
MAX_GAP are never paired. The harness has already aligned ref and deg sample-exactly, so a
phone can only correspond to one that sounds at about the same moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .phones import Phone

__all__ = ["Op", "Edit", "align", "align_labels", "phone_error_rate", "edit_runs", "MAX_GAP"]

MAX_GAP = 0.25  # seconds between two phones beyond which they cannot correspond
TIME_SCALE = 0.1  # seconds of gap that cost TIME_WEIGHT
TIME_WEIGHT = 0.5  # < 1, so timing breaks ties between label edits but never outweighs one


@dataclass(frozen=True)
class Op:
    """One alignment step: "match", "sub", "del" (ref phone missing in deg) or "ins"."""

    kind: str
    ref: Phone | None
    deg: Phone | None


@dataclass(frozen=True)
class Edit:
    """A run of consecutive non-matching steps: where and what changed."""

    start: float
    end: float
    ref: tuple[Phone, ...]
    deg: tuple[Phone, ...]


def align(ref: list[Phone], deg: list[Phone]) -> list[Op]:
    """Minimum-cost alignment of `ref` and `deg` (both in time order)."""
    pairs = _levenshtein(_pair_costs(ref, deg))
    return [_op(None if i is None else ref[i], None if j is None else deg[j]) for i, j in pairs]


def align_labels(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """Plain Levenshtein alignment of label lists as (ref index, hyp index) pairs (None: a gap)."""
    costs = (np.asarray(ref, dtype=object)[:, None] != np.asarray(hyp, dtype=object)[None, :]).astype(float)
    return _levenshtein(costs.reshape(len(ref), len(hyp)))


def phone_error_rate(ops: list[Op]) -> float:
    """(substitutions + deletions + insertions) / reference phones; NaN without reference phones."""
    n_ref = sum(op.ref is not None for op in ops)
    errors = sum(op.kind != "match" for op in ops)
    return errors / n_ref if n_ref else math.nan


def edit_runs(ops: list[Op]) -> list[Edit]:
    """Group consecutive non-match steps into edits with their time span."""
    runs, current = [], []
    for op in [*ops, Op("match", None, None)]:
        if op.kind != "match":
            current.append(op)
        elif current:
            runs.append(_edit(current))
            current = []
    return runs


def _op(ref: Phone | None, deg: Phone | None) -> Op:
    if ref is None or deg is None:
        return Op("ins" if ref is None else "del", ref, deg)
    return Op("match" if ref.label == deg.label else "sub", ref, deg)


def _edit(ops: list[Op]) -> Edit:
    ref = tuple(op.ref for op in ops if op.ref is not None)
    deg = tuple(op.deg for op in ops if op.deg is not None)
    phones = ref + deg
    return Edit(min(p.start for p in phones), max(p.end for p in phones), ref, deg)


def _pair_costs(ref: list[Phone], deg: list[Phone]) -> np.ndarray:
    """(len(ref), len(deg)) cost of pairing each ref phone with each deg phone."""
    if not ref or not deg:
        return np.zeros((len(ref), len(deg)))
    r_start, r_end = np.array([[p.start, p.end] for p in ref]).T
    d_start, d_end = np.array([[p.start, p.end] for p in deg]).T
    gap = np.maximum(0.0, np.maximum.outer(r_start, d_start) - np.minimum.outer(r_end, d_end))
    labels = np.array([p.label for p in ref], dtype=object)[:, None] != np.array([p.label for p in deg], dtype=object)
    costs = labels + TIME_WEIGHT * np.minimum(1.0, gap / TIME_SCALE)
    return np.where(gap > MAX_GAP, np.inf, costs)


def _levenshtein(pair: np.ndarray) -> list[tuple[int | None, int | None]]:
    """Optimal path through the edit table with unit gaps and the given pairing costs."""
    n, m = pair.shape
    table = np.empty((n + 1, m + 1))
    table[0] = np.arange(m + 1)
    steps = np.arange(m + 1)
    for i in range(1, n + 1):
        row = np.empty(m + 1)
        row[0] = i
        row[1:] = np.minimum(table[i - 1, 1:] + 1, table[i - 1, :-1] + pair[i - 1])
        # Insertions chain along the row: row[j] = min over k <= j of row[k] + (j - k).
        table[i] = np.minimum.accumulate(row - steps) + steps
    return _backtrack(table, pair)


def _backtrack(table: np.ndarray, pair: np.ndarray) -> list[tuple[int | None, int | None]]:
    path, i, j = [], *pair.shape
    while i or j:
        if i and j and _same(table[i, j], table[i - 1, j - 1] + pair[i - 1, j - 1]):
            path.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and _same(table[i, j], table[i - 1, j] + 1):
            path.append((i - 1, None))
            i -= 1
        else:
            path.append((None, j - 1))
            j -= 1
    return path[::-1]


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9  # the row trick above adds and subtracts the column index
