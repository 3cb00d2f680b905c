"""MUSHRA scores merged with the objective results of the same conditions, and their agreement."""

import streamlit as st
import ui

from evalkit.report.app_views import agreement_view

st.title("MUSHRA vs metrics")
run = ui.pick_run()
if run is not None:
    tests = agreement_view(ui.database(), run, None).tests
    test = st.selectbox("MUSHRA test", tests, index=0 if tests else None, placeholder="no MUSHRA test yet")
    everything = st.toggle("Include the hidden reference and anchors in the agreement", value=False)
    view = agreement_view(ui.database(), run, test, include_reference=everything)
    analysis = view.analysis
    if view.screening:
        st.caption(view.screening)
    if analysis.message:
        st.info(analysis.message)
    if analysis.conditions is not None:
        st.subheader("Listener scores per condition")
        st.dataframe(analysis.conditions, hide_index=True)
    if analysis.agreement is not None:
        st.subheader("Agreement (95 % bootstrap intervals)")
        st.dataframe(analysis.agreement, hide_index=True)
        ui.show_figure(view.figure)
    if view.excluded:
        with st.expander(f"{len(view.excluded)} assessor(s) excluded by post-screening"):
            st.table({"assessor": list(view.excluded), "reason": list(view.excluded.values())})
