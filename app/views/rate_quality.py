"""Rate–quality curves: each metric against the measured bitrate, one line per codec family."""

import streamlit as st
import ui

from evalkit.report import metric_order
from evalkit.report.app_views import rate_quality_view, sweep_view

st.title("Rate–quality")
run = ui.pick_run()
if run is not None:
    available = metric_order(run)
    metrics = st.multiselect("Metrics", available, default=available[:4])
    figure, points = rate_quality_view(run, metrics)
    if figure is None:
        st.info("No codec results to plot yet: score an experiment with `evalkit run EXPERIMENT.yaml`.")
    else:
        st.caption(
            "Measured bitrate from the bytes (log axis); error bars are 95 % CIs; the dashed line is the "
            "hidden reference. Test conditions (reference, anchors) are left out."
        )
        ui.show_figure(figure)
        with st.expander("Data"):
            st.dataframe(
                points[["codec", "family", "metric", "measured_kbps", "mean", "ci_low", "ci_high"]], hide_index=True
            )
    sweeps = sweep_view(run, metrics)
    for plot in sweeps.plots:
        st.subheader(f"Quality against {plot.param}")
        st.caption(
            "One line per swept card (values from the run's experiment), 95 % CIs; a sweep's baseline codec is "
            "the dashed line of its colour. The data adds the decode real-time factor per value."
        )
        ui.show_figure(plot.figure)
        with st.expander("Data"):
            st.dataframe(plot.points, hide_index=True)
    for note in sweeps.notes + sweeps.missing:
        st.caption(note)
