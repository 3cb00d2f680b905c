"""A listening test's statistics merged with the objective results of the same conditions, and their agreement."""

import streamlit as st
import ui

from evalkit.report.app_views import agreement_view

st.title("Listening tests vs metrics")
run = ui.pick_run()
if run is not None:
    tests = agreement_view(ui.database(), run, None).tests
    test = st.selectbox("Listening test", tests, index=0 if tests else None, placeholder="no listening test yet")
    everything = st.toggle("Include the hidden reference and anchors in the agreement", value=False)
    view = agreement_view(ui.database(), run, test, include_reference=everything)
    analysis = view.analysis
    if view.screening:
        st.caption(f"{view.title} test. Screening: {view.screening}")
    if analysis.message:
        st.info(analysis.message)
    if analysis.conditions is not None:
        st.subheader("Listener scores per condition")
        st.dataframe(analysis.conditions, hide_index=True)
    ui.show_statistics(view)
    if analysis.agreement is not None and not analysis.agreement.empty:
        st.subheader("Agreement (95 % bootstrap intervals)")
        st.dataframe(analysis.agreement, hide_index=True)
        if view.figure is not None:
            ui.show_figure(view.figure)
