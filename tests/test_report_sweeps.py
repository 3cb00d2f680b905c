"""Report section 'Parameter sweeps': quality against a swept card parameter, from the run's stored experiment."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text, update

import evalkit
from evalkit.errors import ConfigError
from evalkit.experiment import experiment_from_dict
from evalkit.report import build_report, load_run, render_html
from evalkit.report.app_views import sweep_view
from evalkit.report.sections import build_sections
from evalkit.report.sweeps import run_sweeps
from evalkit.store import connect
from evalkit.store.models import Run

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "data" / "demo" / "manifest.jsonl"
RUN = "sweep-test"
SWEEP = {"card": "opus-16k-wb", "sweep": {"bitrate": [8000, 16000, 24000]}, "baseline": "g711-mulaw"}


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> str:
    """2 items through g711 and an Opus bitrate sweep whose baseline is g711, scored by SI-SDR."""
    root = tmp_path_factory.mktemp("sweeps")
    url = f"sqlite:///{root / 'results.db'}"
    evalkit.run(
        {
            "name": RUN,
            "dataset": str(MANIFEST),
            "limit": 2,
            "codecs": ["g711-mulaw", SWEEP],
            "metrics": ["si_sdr"],
            "workers": 0,
            "database": url,
            "cache": str(root / "cache"),
        }
    )
    return url


def _copy(url: str, path: Path, codecs: list | None = None):
    """An engine on a copy of the database, its stored experiment's codec list replaced by `codecs`."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    engine = connect(f"sqlite:///{path}")
    if codecs is not None:
        config = load_run(engine, RUN).config
        with engine.begin() as connection:
            connection.execute(update(Run).where(Run.id == RUN).values(experiment={**config, "codecs": codecs}))
    return engine


def _section(engine):
    return next((s for s in build_sections(build_report(engine, RUN, n_boot=50)) if s.id == "sweeps"), None)


def test_sweep_section_plots_each_value_with_its_baseline_and_rtf(scored):
    engine = connect(scored)
    section = _section(engine)
    assert section is not None and len(section.figures) == 1 and not section.missing
    (table,) = section.tables
    assert table.columns[:2] == ["card", "bitrate"] and table.columns[-1] == "decode RTF"
    assert [row[1].text for row in table.rows] == ["8000", "16000", "24000", "baseline: g711-mulaw"]
    board = build_report(engine, RUN, n_boot=50).board.set_index(["codec", "metric"])
    for row in table.rows:
        assert float(row[2].value) == board.at[(row[1].key or row[0].key, "si_sdr"), "mean"]
        assert float(row[-1].value) > 0  # decode RTF of the round trips
    assert 'id="sweeps"' in render_html(build_report(engine, RUN, n_boot=50))
    # Opus at a higher bitrate matches the waveform better: the plotted line rises
    means = [float(row[2].value) for row in table.rows[:3]]
    assert means == sorted(means)


def test_swept_values_come_from_the_stored_experiment_not_the_names(scored, tmp_path):
    engine = _copy(scored, tmp_path / "plain.db", ["g711-mulaw", "opus-16k-wb@bitrate=8000"])
    assert _section(engine) is None  # variant names alone are not a sweep
    scan = run_sweeps({"codecs": [{"card": "opus-16k-wb", "sweep": {"bitrate": [8000]}}]}, {"opus-16k-wb@bitrate=8000"})
    assert [(s.card, s.param, s.values) for s in scan.sweeps] == [
        ("opus-16k-wb", "bitrate", {"opus-16k-wb@bitrate=8000": 8000})
    ]


def test_a_single_value_is_one_point(scored, tmp_path):
    engine = _copy(scored, tmp_path / "one.db", ["g711-mulaw", {"card": "opus-16k-wb", "sweep": {"bitrate": [16000]}}])
    section = _section(engine)
    assert len(section.figures) == 1 and [row[1].text for row in section.tables[0].rows] == ["16000"]


def test_failed_rows_at_one_value_leave_a_gap_not_an_error(scored, tmp_path):
    engine = _copy(scored, tmp_path / "failed.db")
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE results SET status = 'failed', value = NULL, reason = 'decoder crashed' "
                "WHERE codec = 'opus-16k-wb@bitrate=16000'"
            )
        )
    section = _section(engine)
    assert len(section.figures) == 1
    row = next(row for row in section.tables[0].rows if row[1].text == "16000")
    assert row[2].text == "–" and "n 0, 2 failed" in row[2].sub
    render_html(build_report(engine, RUN, n_boot=50))


def test_multi_parameter_sweeps_are_named_not_plotted():
    entry = {"card": "opus-16k-wb", "sweep": {"bitrate": [8000, 16000], "complexity": [0, 10]}}
    scan = run_sweeps({"codecs": [entry]}, {"opus-16k-wb@bitrate=8000,complexity=0"})
    assert not scan.sweeps and "bitrate, complexity" in scan.notes[0]
    odd = [{"card": "opus-16k-wb", "sweep": {"bitrate": {"a": 1}}}, {"card": 3, "sweep": {}}, "opus-12k", None]
    assert run_sweeps({"codecs": odd}, {"opus-12k"}).sweeps == [] and run_sweeps({"codecs": "x"}, set()).sweeps == []


def test_app_view_gives_the_figure_and_its_points(scored):
    view = sweep_view(load_run(connect(scored), RUN), ["si_sdr"])
    (plot,) = view.plots
    assert plot.figure is not None and set(plot.points["role"]) == {"sweep", "baseline"}
    assert set(plot.points["metric"]) == {"si_sdr", "decode_rtf"}


def test_baseline_must_be_a_codec_of_the_experiment():
    entry = {**SWEEP, "baseline": "opus-12k"}
    with pytest.raises(ConfigError, match=r"codecs\[1\]\.baseline.*'opus-12k' is not a codec of this experiment"):
        experiment_from_dict(
            {"name": "x", "dataset": str(MANIFEST), "codecs": ["g711-mulaw", entry], "metrics": ["si_sdr"]}
        )
