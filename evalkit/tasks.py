"""Worker side of a run: one (item, codec) task in, its result rows out.

This module is what worker processes import (and what the local pool's fork server preloads),
so it keeps to what scoring needs: no database, no pandas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .alignment import AlignedPair, AlignPolicy, align_pair, mode_for
from .audio import MIN_COST_SECONDS, Audio, check_content, downmix, too_long_to_score
from .cache import DecodedCache, file_digest
from .cards import Card
from .codecs import Codec
from .conditions import DecodedCondition, ItemFiles, render
from .datasets import Item
from .errors import EvalkitError
from .executors import one_thread_torch
from .harness import delay_tolerance, roundtrip
from .metrics import METRICS, evaluate
from .rates import rate_warnings
from .versions import PINNED_PACKAGES, package_versions

__all__ = [
    "Task",
    "TaskOutput",
    "process",
    "failed_output",
    "split_task",
    "task_key",
    "package_versions",
    "cost_metrics",
    "COST_METRICS",
    "COST_VERSION",
    "PINNED_PACKAGES",
]

# Rows every round trip yields besides the requested metrics: what the codec costs.
COST_METRICS = ("bitrate_kbps", "encode_rtf", "decode_rtf")
COST_VERSION = "1"


@dataclass(frozen=True)
class Task:
    """One item through one condition (a codec card, or files made elsewhere), and the metrics
    still missing for that pair."""

    run_id: str
    dataset: str
    item: Item
    card: Card | DecodedCondition  # the condition
    metrics: tuple[str, ...]
    cost: bool  # whether the round trip itself still has to be recorded
    cache_root: str
    downmix: bool
    alignment: AlignPolicy = AlignPolicy()
    files: ItemFiles | None = None  # a condition made elsewhere: this item's files
    codec_hash: str = ""  # the codec part of the rows' key (runner.row_hash); "" for the condition's own


@dataclass
class TaskOutput:
    roundtrip: dict | None
    results: list[dict]
    events: list[dict] | None = None  # phoneme events of the item, when the phoneme metric ran
    warnings: list[dict] = field(default_factory=list)  # {key, text, item}: see rates.rate_warnings


@dataclass(frozen=True)
class _Decoded:
    """A condition's output for one item, and how to align it."""

    audio: Audio
    roundtrip: dict | None  # the round-trip row, when it had to be recorded
    cost: dict  # cost output -> value (None: not measurable here)
    rate: int  # the rate the condition worked at
    mode: str  # alignment mode
    expected: int | None  # lag already applied by the harness (a codec's declared delay)
    tolerance: int
    declared_delay: int | None = None  # set when the pair's alignment is the round trip's delay check


def cost_metrics(condition: Card | DecodedCondition) -> tuple[str, ...]:
    return getattr(condition, "cost_metrics", COST_METRICS)


def process(task: Task) -> TaskOutput:
    """Worker side: load, decode (round trip, cached output or files), align, score. Never raises for an item."""
    try:
        ref = task.item.load()
        ref = downmix(ref) if task.downmix else ref
    except EvalkitError as err:
        return failed_output(task, f"cannot load item: {err}")
    content = check_content(ref)
    if content.problem:
        return failed_output(task, f"degenerate input, not scored: reference {content.reason}")
    if long := too_long_to_score(ref, "the reference"):
        return failed_output(task, long)
    if task.files is not None and task.files.problem:
        return failed_output(task, task.files.problem)
    try:
        out = (
            _from_files(task, task.card, ref)
            if isinstance(task.card, DecodedCondition)
            else _from_codec(task, task.card, ref)
        )
    except EvalkitError as err:
        what = "codec" if isinstance(task.card, Card) else "condition"
        return failed_output(task, f"{what} {task.card.name} failed: {err}")
    if long := too_long_to_score(out.audio, "the decoded audio"):
        return failed_output(task, long)
    pair = align_pair(ref, out.audio, task.alignment, out.mode, out.expected, out.tolerance)
    text = task.item.text
    if "phoneme" in task.metrics:
        _share_reference_phones(task.cache_root)
    results = [r for name in task.metrics for r in evaluate(name, ref, out.audio, text, task.downmix, pair)]
    events = _phoneme_events(results, pair, text)
    rows = [_result_row(task, r) for r in results] + _cost_rows(task, out.cost, pair, ref.duration)
    trip = (
        None
        if out.roundtrip is None
        else {**out.roundtrip, **_alignment_fields(pair), **_delay_check(out, pair, ref.duration)}
    )
    beyond = _beyond_full_scale(task, out.audio)
    if notes := "; ".join(note for note in (content.warning, beyond) if note):  # scored, with why to doubt it
        rows = _with_reason(rows, notes)
        trip = None if trip is None else _with_reason([trip], notes)[0]
    found = _warnings(task, ref, out.rate) + _content_warnings(task, content) + _decoded_warnings(task, beyond)
    return TaskOutput(trip, rows, events, found)


def _share_reference_phones(cache_root: str) -> None:
    """An item's reference is recognised once for all its codecs, whichever worker runs them."""
    from .content.detector import share_reference_phones  # lazy: only the phoneme metric needs it

    share_reference_phones(cache_root)


def _from_codec(task: Task, card: Card, ref: Audio) -> _Decoded:
    """Round-trip through the card, or reuse the cached output when only metrics are missing."""
    cache = DecodedCache(task.cache_root)
    codec = _codec(card, ref)
    info = codec.info
    key = cache.key(file_digest(task.item.path), card.config_hash, info.version, task.downmix)
    decoded = None if task.cost else cache.get(key, task.item.id)
    trip, cost = None, {}
    # At the item's own rate, aligning the pair measures the codec's delay too: one estimate, not two.
    same_rate = info.sample_rate == ref.sample_rate
    if decoded is None:
        run = roundtrip(codec, ref, measure=not same_rate)
        decoded = run.decoded
        if not cache.has(key):  # content-addressed: an existing file holds these very samples
            cache.put(key, decoded)
        trip = _roundtrip_row(task, run, codec, key)
        cost = {
            "bitrate_kbps": run.bitrate / 1000,
            "encode_rtf": run.encode_seconds / run.duration,
            "decode_rtf": run.decode_seconds / run.duration,
        }
    # The harness applied the declared delay; a measurement within the delay check's tolerance keeps it.
    tolerance = delay_tolerance(info, ref.sample_rate)
    return _Decoded(
        decoded,
        trip,
        cost,
        info.sample_rate,
        mode_for(info.waveform_matching),
        0,
        tolerance,
        info.lookahead_samples if trip is not None and same_rate else None,
    )


_CODECS: dict[tuple, Codec] = {}  # built once per worker process: (configuration, folder, rate) -> codec
_KEPT_CODECS = 32


def _codec(card: Card, ref: Audio) -> Codec:
    """The card's codec for this item, built once per process and run once untimed on a quarter
    second of the first item: the real-time factors stored are warm (no library set-up, model
    loading or first-call allocation in them), as `evalkit profile` measures them."""
    key = (card.config_hash, str(card.path), ref.sample_rate if card.follows_item_rate else None)
    if key not in _CODECS:
        codec = card.build(ref.sample_rate)
        one_thread_torch()
        try:
            roundtrip(codec, ref.with_samples(ref.samples[:, : max(1, ref.sample_rate // 4)]), measure=False)
        except EvalkitError:
            pass  # the timed round trip says what is wrong
        if len(_CODECS) >= _KEPT_CODECS:  # a long-lived process (workers: 0) meets many cards
            _CODECS.pop(next(iter(_CODECS)))
        _CODECS[key] = codec
    return _CODECS[key]


def _from_files(task: Task, condition: DecodedCondition, ref: Audio) -> _Decoded:
    """Load (or decode) the item's files made elsewhere."""
    files = task.files
    if files is None:  # the runner matches every item of such a condition to its files first
        raise EvalkitError(f"no files of item {task.item.id!r} for condition {condition.name!r}")
    made = render(condition, files, ref, task.downmix)
    trip, cost = None, {}
    if task.cost:
        bitrate = None if made.bitrate is None else made.bitrate / 1000
        cost = {"bitrate_kbps": bitrate}
        trip = {
            **task_key(task, with_dataset=False),
            "status": "ok",
            "reason": None,
            "bitrate": made.bitrate,
            "total_bitrate": made.total_bitrate,
            "duration": ref.duration,
            "declared_delay": made.declared_delay,
            "decode_seconds": made.decode_seconds,
            "cache_key": files.identity,
            "codec_version": made.version,
            "packages": package_versions(),
        }
    expected = None if made.declared_delay is None else 0  # a card's decoder: its lookahead was removed
    return _Decoded(made.audio, trip, cost, made.audio.sample_rate, mode_for(made.waveform), expected, made.tolerance)


def _alignment_fields(pair: AlignedPair) -> dict:
    return {"lag": pair.alignment.lag, "length_change": pair.alignment.length_change}


def _delay_check(out: _Decoded, pair: AlignedPair, duration: float) -> dict:
    """The round trip's measured delay taken from the pair's alignment, where that measured it
    (the codec ran at the item's rate, so the lag behind the harness's alignment is in codec
    samples) and the item is long enough to support a measurement."""
    if out.declared_delay is None:
        return {}
    estimated = pair.alignment.estimated
    if estimated is None or duration < MIN_COST_SECONDS:
        return {"measured_delay": None}
    return {"measured_delay": out.declared_delay + estimated}


def _with_reason(rows: list[dict], reason: str) -> list[dict]:
    return [{**row, "reason": reason} if row["status"] == "ok" and not row["reason"] else row for row in rows]


def _content_warnings(task: Task, content) -> list[dict]:
    if not content.warning:
        return []
    return [
        {
            "key": "input:clipped",
            "item": task.item.id,
            "text": "items are clipped at full scale (each item's fraction is the reason stored with its rows)",
        }
    ]


def _beyond_full_scale(task: Task, decoded: Audio) -> str | None:
    """A decoded file made elsewhere with float samples beyond full scale: what a player would play
    (clipped) is not what the metrics score, so its rows say so. Codec output is the codec's to judge."""
    if not isinstance(task.card, DecodedCondition):
        return None
    peak = float(np.max(np.abs(decoded.samples)))
    return (
        None if peak <= 1.0 else f"decoded file beyond full scale (peak {peak:.3g}): scored unclipped, played clipped"
    )


def _decoded_warnings(task: Task, beyond: str | None) -> list[dict]:
    if beyond is None:
        return []
    text = f"{task.card.name}: decoded files hold float samples beyond full scale (each item's peak is in its rows)"
    return [{"key": f"decoded:beyond:{task.card.name}", "item": task.item.id, "text": text}]


def _warnings(task: Task, ref: Audio, rate: int) -> list[dict]:
    bandwidths = {name: METRICS.get(name).spec.bandwidth_hz for name in task.metrics}
    wanted = {name: band for name, band in bandwidths.items() if band}
    return rate_warnings(task.item.id, ref, rate, task.card.name, wanted)


def _phoneme_events(results, pair: AlignedPair, text) -> list[dict] | None:
    """Where the phoneme metric scored the item, its events with their times (for playback)."""
    if not any(r.status == "ok" and r.metric == "hallucinations_per_min" for r in results):
        return None
    from .metrics.content import content_events

    try:
        return content_events(pair.ref, pair.deg, text)  # reuses the recognition evaluate() just ran
    except EvalkitError:
        return None


def split_task(task: Task) -> tuple[Task, list[Task]]:
    """The task as parts that can fail alone: its round trip (with the cost rows, if owed), and
    each metric on its own (reading the decoded audio the round trip cached)."""
    return dataclasses.replace(task, metrics=()), [
        dataclasses.replace(task, metrics=(name,), cost=False) for name in task.metrics
    ]


def failed_output(task: Task, reason: str) -> TaskOutput:
    """Every row the task owed, marked failed with `reason`: the failure is recorded, never dropped."""
    base = task_key(task)
    rows = [
        {
            **base,
            "metric": o,
            "metric_version": METRICS.get(n).spec.version,
            "status": "failed",
            "value": None,
            "reason": reason,
        }
        for n in task.metrics
        for o in METRICS.get(n).spec.outputs
    ]
    roundtrip_row = None
    if task.cost:
        rows += [
            {**base, "metric": o, "metric_version": COST_VERSION, "status": "failed", "value": None, "reason": reason}
            for o in cost_metrics(task.card)
        ]
        roundtrip_row = {
            **task_key(task, with_dataset=False),
            "status": "failed",
            "reason": reason,
            "cache_key": task.files.identity if task.files else None,
        }
    return TaskOutput(roundtrip_row, rows)


def task_key(task: Task, with_dataset: bool = True) -> dict:
    key = {
        "run_id": task.run_id,
        "item_id": task.item.id,
        "codec": task.card.name,
        "codec_hash": task.codec_hash or task.card.config_hash,
    }
    return {**key, "dataset": task.dataset} if with_dataset else key


def _roundtrip_row(task: Task, run, codec, cache_key: str) -> dict:
    return {
        **task_key(task, with_dataset=False),
        "status": "ok",
        "reason": None,
        "bitrate": run.bitrate,
        "total_bitrate": run.total_bitrate,
        "duration": run.duration,
        "declared_delay": run.declared_delay,
        "measured_delay": run.measured_delay,
        "delay_tolerance": run.delay_tolerance,
        "encode_seconds": run.encode_seconds,
        "decode_seconds": run.decode_seconds,
        "cache_key": cache_key,
        "codec_version": codec.info.version,
        "packages": package_versions(),
    }


def _cost_rows(task: Task, values: dict, pair: AlignedPair, duration: float) -> list[dict]:
    """What the condition cost; a cost that cannot be measured (files made elsewhere, an item too
    short for a bitrate or a real-time factor to mean anything) is skipped, with why."""
    rate = pair.ref.sample_rate
    short = duration < MIN_COST_SECONDS
    unknown = (
        f"needs at least {MIN_COST_SECONDS:g} s of audio; the item has {duration:.3g} s"
        if short
        else "unknown: give the condition bitrate_kbps or bitstreams"
    )
    rows = []
    for name, value in values.items():
        known = value is not None and not short
        rows.append(
            {
                **task_key(task),
                "metric": name,
                "metric_version": COST_VERSION,
                "status": "ok" if known else "skipped",
                "value": value if known else None,
                "reason": None if known else unknown,
                "native_rate": rate,
                "metric_rate": rate,
                "package": "evalkit",
                "package_version": __version__,
                "wall_seconds": 0.0,
                **_alignment_fields(pair),
            }
        )
    return rows


def _result_row(task: Task, result) -> dict:
    row = dataclasses.asdict(result)
    row["wall_seconds"] = row.pop("seconds")
    return {**task_key(task), **row}
