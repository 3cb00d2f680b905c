"""One item through one codec: reference and decoded audio, spectrograms, metrics, hallucination events."""

import streamlit as st
import ui

from evalkit.report import item_view, load_audio
from evalkit.report.drilldown import NO_EVENTS, event_snippets
from evalkit.report.figures import spectrogram_figure

MAX_SNIPPETS = 10  # events with playable snippets; the table lists them all

st.title("Item drill-down")
run = ui.pick_run()
if run is not None and not run.results.empty:
    items = sorted(run.results["item_id"].unique())
    left, right = st.columns(2)
    item = left.selectbox("Item", items, format_func=lambda i: f"{i} ({run.speakers.get(i, 'speaker unknown')})")
    codec = right.selectbox("Codec", sorted(run.results["codec"].unique()))
    view = item_view(ui.database(), run, item, codec)
    for note in view.notes:
        st.warning(note)
    reference, decoded = load_audio(view.reference_path), load_audio(view.decoded_path)
    left, right = st.columns(2)
    for column, name, audio in ((left, "Reference", reference), (right, f"Decoded ({codec})", decoded)):
        column.markdown(f"**{name}**")
        if audio is not None:
            column.audio(audio.samples, sample_rate=audio.sample_rate)
    if reference is not None or decoded is not None:
        ui.show_figure(spectrogram_figure(reference, decoded))
    st.subheader("Metrics")
    st.dataframe(view.metrics, hide_index=True)
    st.subheader("Hallucination events")
    if view.events is None or view.events.empty:
        st.info(NO_EVENTS if view.events is None else "No hallucination events on this item through this codec.")
    else:
        st.dataframe(view.events, hide_index=True)
        for label, *clips in event_snippets(view.events, reference, decoded, MAX_SNIPPETS):
            st.markdown(f"**{label}** (reference left, decoded right)")
            for column, clip in zip(st.columns(2), clips):
                if clip is not None:
                    column.audio(clip.samples, sample_rate=clip.sample_rate)
elif run is not None:
    st.info("This run has no results yet.")
