"""Leaderboards, plots, metric-listener agreement and exported reports (no Streamlit in here).

The app (app/streamlit_app.py) and `evalkit report` call these functions; each part says what is
missing (no profiles, no phoneme results, no MUSHRA test) instead of failing.
"""

from .agreement import METHODS, agreement_table, bootstrap_ci, condition_level, correlate
from .build import ReportData, build_report
from .codecinfo import CodecMeta, codec_meta, higher_is_better
from .cost import complexity_table, mark_front, pareto_front, quality_points
from .data import RunData, item_speakers, list_runs, load_run
from .drilldown import ItemView, item_view, load_audio, read_events, snippet
from .export import FORMATS, latex_table, leaderboard_export, write_report
from .html import render_html
from .leaderboard import codec_table, filter_results, leaderboard, leaderboard_wide, metric_order
from .listening import Listening, condition_scores, load_listening, mushra_tests, stimulus_frame

__all__ = [
    "RunData", "load_run", "list_runs", "item_speakers", "CodecMeta", "codec_meta", "higher_is_better",
    "leaderboard", "leaderboard_wide", "filter_results", "metric_order", "codec_table",
    "complexity_table", "quality_points", "pareto_front", "mark_front",
    "ItemView", "item_view", "read_events", "load_audio", "snippet",
    "Listening", "load_listening", "mushra_tests", "stimulus_frame", "condition_scores",
    "METHODS", "correlate", "bootstrap_ci", "condition_level", "agreement_table",
    "ReportData", "build_report", "render_html", "write_report", "latex_table", "leaderboard_export", "FORMATS",
]
