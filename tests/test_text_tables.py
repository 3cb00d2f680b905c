"""Plain-text tables printed by the command line, on rows as a stored run gives them."""

from __future__ import annotations

import pandas as pd

from evalkit.text_tables import item_table


def test_item_table_takes_a_stored_runs_missing_lag():
    # A run read back from the database holds lags as nullable integers: a row that failed
    # before alignment carries pandas' NA, which must print as "-", not raise.
    frame = pd.DataFrame(
        {
            "codec": ["mine", "mine", "mine"],
            "item_id": ["a", "a", "b"],
            "metric": ["si_sdr", "pesq_wb", "si_sdr"],
            "value": [12.5, None, None],
            "status": ["ok", "failed", "failed"],
            "lag": pd.array([pd.NA, 3, pd.NA], dtype="Int64"),
            "length_change": pd.array([pd.NA, 0, pd.NA], dtype="Int64"),
        }
    )
    lines = item_table(frame).splitlines()
    assert lines[2].split()[:4] == ["mine", "a", "-", "-"] and "12.500" in lines[2]
    assert lines[3].split()[:4] == ["mine", "b", "-", "-"] and "failed" in lines[3]
