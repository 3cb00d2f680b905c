"""Leaderboards, plots, metric-listener agreement and exported reports (no Streamlit in here).

The app (app/streamlit_app.py) and `evalkit report` call these functions; each part says what is
missing (no profiles, no phoneme results, no MUSHRA test) instead of failing.
"""

from .agreement import LEVELS, METHODS, agreement_table, bootstrap_ci, correlate, system_level
from .build import ReportData, ReportOptions, build_report
from .codecinfo import CodecMeta, codec_meta, higher_is_better
from .compare import best_versus_rest, compare_codecs
from .data import RunData, item_speakers, list_runs, load_run
from .drilldown import ItemView, item_view, load_audio, read_events, snippet
from .export import FORMATS, latex_table, leaderboard_export, write_figures, write_report
from .html import render_html
from .leaderboard import codec_table, filter_results, leaderboard, leaderboard_wide, metric_order
from .listening import Listening, condition_scores, load_listening, mushra_tests, stimulus_frame
from .names import DisplayNames, load_names
from .pareto import complexity_table, mark_front, pareto_front, quality_points

__all__ = [
    "RunData",
    "load_run",
    "list_runs",
    "item_speakers",
    "CodecMeta",
    "codec_meta",
    "higher_is_better",
    "leaderboard",
    "leaderboard_wide",
    "filter_results",
    "metric_order",
    "codec_table",
    "complexity_table",
    "quality_points",
    "pareto_front",
    "mark_front",
    "ItemView",
    "item_view",
    "read_events",
    "load_audio",
    "snippet",
    "Listening",
    "load_listening",
    "mushra_tests",
    "stimulus_frame",
    "condition_scores",
    "METHODS",
    "LEVELS",
    "correlate",
    "bootstrap_ci",
    "system_level",
    "agreement_table",
    "compare_codecs",
    "best_versus_rest",
    "DisplayNames",
    "load_names",
    "ReportData",
    "ReportOptions",
    "build_report",
    "render_html",
    "write_report",
    "write_figures",
    "latex_table",
    "leaderboard_export",
    "FORMATS",
]
