"""Quality against latency or complexity, with the Pareto front marked."""

import streamlit as st
import ui

from evalkit.report import metric_order
from evalkit.report.app_views import COST_AXES, cost_view

st.title("Quality vs cost")
run = ui.pick_run()
if run is not None:
    axis = st.segmented_control("Cost", list(COST_AXES), default="latency") or "latency"
    available = metric_order(run)
    metrics = st.multiselect("Metrics", available, default=available[:2])
    view = cost_view(ui.database(), run, metrics, axis)
    if view.message:
        st.info(view.message)
    if view.figure is not None:
        ui.show_figure(view.figure)
        st.subheader("Pareto front")
        st.dataframe(view.front, hide_index=True)
