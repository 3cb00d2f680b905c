"""The statistics of a listening test as text (what `evalkit ratings stats` prints)."""

from __future__ import annotations

import pandas as pd

from ...errors import ConfigError
from ...text_tables import format_table

__all__ = ["stats_text", "typed_stats_text"]


def stats_text(engine, test: str) -> str:
    """The statistics of a test as text: what `evalkit ratings stats` prints."""
    from ...report.listening import load_listening
    from ...report.sections_listening import test_type_of
    from ..omnibus import omnibus
    from ..stats import condition_summary

    if test_type_of(engine, test) not in (None, "mushra"):
        return typed_stats_text(engine, test)
    listening = load_listening(engine, test)
    if listening.message and listening.setup is None:  # no such test: an error, so scripts notice
        raise ConfigError(listening.message)
    if listening.message:
        return listening.message
    lines = [f"screening: {listening.screening}"]
    lines += [f"  excluded {who}: {why}" for who, why in listening.excluded.items()]
    if listening.kept.empty:
        return "\n".join(lines + ["post-screening excluded every listener"])
    order = [c for c in listening.setup.order() if c in set(listening.kept["condition"])]
    summary = condition_summary(listening.kept, order=order, n_boot=2000)
    result = omnibus(listening.kept, conditions=order)
    lines += [
        f"design: {result.design.describe()}",
        "",
        _table(summary, ["condition", "n", "assessors", "mean", "t_low", "t_high", "median"]),
        "",
    ]
    lines.append(_table(result.table(), ["test", "statistic", "df", "p", "note"]))
    lines += [f"note: {note}" for note in result.notes]
    if result.contrasts is not None:
        lines += [
            "",
            "pairwise contrasts (mixed model, Holm):",
            _table(result.contrasts, ["a", "b", "estimate", "ci_low", "ci_high", "p_adjusted", "significant"]),
        ]
    return "\n".join(lines)


def typed_stats_text(engine, test: str) -> str:
    """A test of a type beside MUSHRA: the type's statistics as the report shows them (MOS, DMOS, CMOS or SDG
    with 95 % CIs, preferences with Bradley-Terry strengths, ABX identification)."""
    from ...listening.analysis import load_test
    from ...report.sections_listening import statistics_tables, typed_statistics

    loaded = load_test(engine, test)
    lines = [f"type: {loaded.type.title}", f"screening: {loaded.describe()}"]
    lines += [f"  excluded {who}: {why}" for who, why in loaded.excluded.items()]
    typed = typed_statistics(loaded)
    if typed.message:
        return "\n".join([*lines, typed.message])
    for _, caption, table in statistics_tables(typed):
        lines += ["", f"{caption}:", _table(table, list(table.columns))]
    return "\n".join(lines)


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    rows = [[_cell(value) for value in row] for row in frame[columns].itertuples(index=False)]
    return format_table(columns, rows)


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if value != value else (f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}")
    return str(value)
