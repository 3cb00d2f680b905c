"""Leaderboard: codec × metric means with 95 % CIs, filtered by dataset, speaker and metric; sortable."""

import streamlit as st
import ui

from evalkit.listening.listeners import to_csv
from evalkit.report.app_views import filter_options, leaderboard_view
from evalkit.report.codecinfo import COST_METRICS, higher_is_better
from evalkit.report.leaderboard import coverage_gaps, current_results

st.title("Leaderboard")
run = ui.pick_run()
if run is not None:
    options = filter_options(run)
    quality = [m for m in options.metrics if m not in COST_METRICS]
    datasets = st.sidebar.multiselect("Dataset", options.datasets, placeholder="all datasets")
    speakers = st.sidebar.multiselect(
        "Speaker", options.speakers, placeholder="all speakers", disabled=not options.speakers
    )
    metrics = st.multiselect("Metrics", options.metrics, default=quality)
    left, right = st.columns([3, 1])
    sort_by = left.selectbox("Sort by", metrics or ["–"])
    best_first = right.toggle("Best first", value=True)
    ascending = None if best_first else higher_is_better(sort_by)
    wide, board = leaderboard_view(run, datasets, speakers, metrics, sort_by, ascending)
    for gap in coverage_gaps(current_results(run.results)):
        st.warning(gap)
    if board.empty:
        st.info("No results under these filters.")
    else:
        st.caption(
            "Mean over items; ± is the half-width of the 95 % confidence interval (Student's t). "
            "Click a column header to sort."
        )
        st.dataframe(
            wide,
            hide_index=True,
            width="stretch",
            height="content",
            column_config={
                c: st.column_config.NumberColumn(format="%.3f") for c in wide.columns if c not in ("codec", "family")
            },
        )
        st.download_button("Download CSV (long form)", to_csv(board), f"{run.run_id}-leaderboard.csv", "text/csv")
