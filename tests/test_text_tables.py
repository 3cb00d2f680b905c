"""Plain-text tables printed by the command line, on rows as a stored run gives them."""

from __future__ import annotations

import pandas as pd

from evalkit.text_tables import item_table, leaderboard_table


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


def test_leaderboard_of_one_item_shows_means_without_a_nan_interval():
    # `evalkit demo --limit 1`: one item per codec has a mean but no interval.
    summary = pd.DataFrame(
        {
            "codec": ["a", "b"],
            "metric": ["pesq_wb", "pesq_wb"],
            "n_ok": [1, 3],
            "n_failed": [0, 0],
            "n_skipped": [0, 0],
            "mean": [3.5, 2.0],
            "ci_low": [float("nan"), 1.5],
            "ci_high": [float("nan"), 2.5],
        }
    )
    table = leaderboard_table(summary)
    assert "nan" not in table
    assert [line.split()[:3] for line in table.splitlines()[2:]] == [["a", "3.5"], ["b", "2", "±0.5"]]


def test_names_from_other_peoples_files_cannot_drive_the_terminal(capsys):
    """An item id or card name may carry escape sequences (clear the screen, recolour) or a newline."""
    from evalkit.cli import main
    from evalkit.errors import terminal_safe
    from evalkit.text_tables import format_table, warning_lines

    assert terminal_safe("a\x1b[2Jb\nc\x9b ünï") == "a\\x1b[2Jb\\nc\\x9b ünï"
    table = format_table(["item"], [["x\x1b]0;owned\x07"], ["two\nlines"]])
    assert "\x1b" not in table and "\x07" not in table and len(table.splitlines()) == 4
    assert "\x1b" not in "".join(warning_lines({"k": {"text": "odd", "items": ["\x1b[31mred"]}}))
    assert main(["run", "\x1b[2Jmissing.yaml"]) == 1
    assert "\x1b" not in capsys.readouterr().err
