"""Ratings files as people hand them over (spreadsheet-saved, other test types, odd values) and tests so small
that the statistics have little to work with: each is imported, analysed and exported without a traceback."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from evalkit import mushra
from evalkit.mushra.ratings import RatingsError, export_ratings, import_ratings
from evalkit.mushra.ratings.stats_report import stats_text

WEBMUSHRA = Path(__file__).resolve().parent / "fixtures" / "ratings" / "webmushra_mushra.csv"


def spreadsheet_copy(source: Path, target: Path, decimal_comma: bool = False) -> Path:
    """`source` as a spreadsheet in a ';' locale saves it: BOM, ';', CRLF, upper-case header, empty columns after."""
    with open(source, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    score = header.index("rating_score")
    with open(target, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerow([name.upper() for name in header] + ["", ""])
        for row in rows:
            if decimal_comma:
                row[score] = f"{row[score]},0"
            writer.writerow(row + ["", ""])
    return target


def scores(engine, test: str) -> list[tuple]:
    frame = mushra.ratings_frame(engine, test)
    return sorted(frame[["participant", "item", "condition", "score"]].itertuples(index=False, name=None))


def test_a_spreadsheet_saved_webmushra_export_gives_the_same_ratings(engine, tmp_path):
    import_ratings(engine, WEBMUSHRA, "webmushra", test="plain")
    saved = spreadsheet_copy(WEBMUSHRA, tmp_path / "mushra.csv", decimal_comma=True)
    result = import_ratings(engine, saved, "webmushra", test="saved")
    assert result.ratings == 180 and scores(engine, "saved") == scores(engine, "plain")


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_long_table_with_a_decimal_comma_keeps_the_fraction(engine, tmp_path, separator):
    rows = [
        separator.join([f"L{k}", f"item {i}", c, s, "2,5"])
        for k in range(3)
        for i in range(2)
        for c, s in (("reference", "100"), ("anchor70", "40"), ("C1", "62,5"))
    ]
    header = separator.join(["Listener", "Item", "Condition", "Score", "Time"])
    path = tmp_path / "ratings.csv"
    path.write_text(header + "\r\n" + "\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
    import_ratings(engine, path, "long", test="comma")
    frame = export_ratings(engine, "comma", tmp_path / "out.csv")
    assert sorted(set(pd.read_csv(frame)["score"])) == [40.0, 62.5, 100.0]
    assert set(pd.read_csv(frame)["time"]) == {2.5}


@pytest.mark.parametrize(
    "header, what",
    [
        ("session_test_id,age,trial_id,choice_reference,choice_non_reference,choice_answer,choice_time", "paired"),
        ("session_test_id,trial_id,rating_reference,rating_non_reference,rating_reference_score", "BS.1116"),
        ("session_test_id,trial_id,stimuli_rating,stimuli,rating_time", "Likert"),
    ],
)
def test_webmushra_results_of_another_test_type_are_named_alone(engine, tmp_path, header, what):
    path = tmp_path / "results.csv"
    path.write_text(header + "\nt,1,2,3,4,5,6\n")
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, path, "webmushra")
    (problem,) = caught.value.problems  # no second problem about roles of a file that was not read
    assert what in problem and "mushra.csv" in problem


def test_a_negative_time_on_a_trial_is_refused(engine, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("listener,item,condition,score,time\nL1,i1,reference,100,-5\nL1,i1,anchor70,40,-5\n")
    with pytest.raises(RatingsError, match=r"line 2: time on the trial -5 s is negative"):
        import_ratings(engine, path, "long")


def test_a_time_too_large_for_milliseconds_is_exported_empty(engine, tmp_path):
    path = tmp_path / "ratings.csv"
    rows = [
        f"L1,{item},{condition},{score},{time}"
        for item, time in (("i1", "1e308"), ("i2", "3"))
        for condition, score in (("reference", 100), ("anchor70", 40))
    ]
    path.write_text("listener,item,condition,score,time\n" + "\n".join(rows) + "\n")
    import_ratings(engine, path, "long", test="huge")
    written = pd.read_csv(export_ratings(engine, "huge", tmp_path / "mushra.csv", "webmushra"))
    times = written.groupby("trial_id")["rating_time"].first()
    assert pd.isna(times["i1"]) and times["i2"] == 3000


def test_statistics_of_one_listener_on_one_item_say_why_there_is_no_model(engine, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("listener,item,condition,score\nL1,i1,reference,100\nL1,i1,anchor70,40\nL1,i1,C1,70\n")
    import_ratings(engine, path, "long", test="alone")
    assert "mixed model not fitted: one listener rated one item only" in stats_text(engine, "alone")


FORMULAS = (
    "listener,item,condition,score\n@SUM(1),+cmd|' /C calc'!A0,reference,100\n@SUM(1),+cmd|' /C calc'!A0,anchor70,40\n"
)
FORMULAS += '@SUM(1),+cmd|\' /C calc\'!A0,"=HYPERLINK(""http://example.org"",""x"")",30\n'


@pytest.mark.parametrize("fmt, reader", [("tidy", "long"), ("webmushra", "webmushra")])
def test_names_a_spreadsheet_would_run_are_exported_as_text_and_read_back(engine, tmp_path, fmt, reader):
    source = tmp_path / "ratings.csv"
    source.write_text(FORMULAS)
    import_ratings(engine, source, "long", test="formulas")
    written = export_ratings(engine, "formulas", tmp_path / "out.csv", fmt)
    with open(written, newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@"))]  # nothing a spreadsheet would run
    assert {'\'=HYPERLINK("http://example.org","x")', "'+cmd|' /C calc'!A0"} <= set(cells)
    import_ratings(engine, written, reader, test="again")
    assert [row[1:] for row in scores(engine, "again")] == [row[1:] for row in scores(engine, "formulas")]


def test_listener_exports_keep_formulas_from_running_and_numbers_as_they_are(engine, tmp_path):
    import io
    import zipfile

    from evalkit.listening.listeners import export_results
    from evalkit.listening.safetext import spreadsheet_safe

    frame = pd.DataFrame({"answer": ["=1+1", "-3", "-x", "\tcmd", "fine", None], "n": [-1, 2, 3, 4, 5, 6]})
    safe = spreadsheet_safe(frame)
    assert safe["answer"].tolist()[:5] == ["'=1+1", "-3", "'-x", "'\tcmd", "fine"] and safe["n"].equals(frame["n"])
    source = tmp_path / "ratings.csv"
    source.write_text(FORMULAS)
    import_ratings(engine, source, "long", test="zipped")
    with zipfile.ZipFile(io.BytesIO(export_results(engine, "zipped"))) as archive:
        ratings = archive.read("zipped/ratings.csv").decode()
    assert "'=HYPERLINK" in ratings and ",=HYPERLINK" not in ratings and ",+cmd" not in ratings


def test_statistics_of_a_test_that_does_not_exist_are_an_error(tmp_path, capsys):
    from evalkit.cli import main

    assert main(["ratings", "stats", "nosuch", "--database", f"sqlite:///{tmp_path / 'e.db'}"]) == 1
    assert "error: no MUSHRA test named 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "results",
    [
        [True, False, {"TestID": "abx3"}, {"UserName": "ann"}],
        [{"TestID": "p1", "PresentationOrder": "A=x, B=y", "Runtime": 800, "Preference": "A"}, {"UserName": "ann"}],
    ],
)
def test_beaqlejs_abx_and_preference_results_are_named_alone(engine, tmp_path, results):
    import json

    path = tmp_path / "2024_ann.txt"
    path.write_text(json.dumps(results))
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, path, "beaqlejs", screening="reference")
    (problem,) = caught.value.problems
    assert problem.startswith("2024_ann.txt: these are BeaqleJS ABX or preference results")


def test_a_map_that_leaves_every_item_out_says_only_that(engine, tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("items: {trial1: null, item_a: null, item_b: null, item_c: null, item_d: null}\n")
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, WEBMUSHRA, "webmushra", map_path=path)
    assert caught.value.problems == ["no ratings to import (the map may leave every item or condition out)"]


def test_webmushra_files_joined_with_their_headers_import_as_one(engine, tmp_path):
    lines = WEBMUSHRA.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    split = next(k for k, row in enumerate(rows) if row.split(",")[3] != rows[0].split(",")[3])  # a new listener
    joined = tmp_path / "mushra.csv"
    joined.write_text(header + "".join(rows[:split]) + header + "".join(rows[split:]))
    import_ratings(engine, WEBMUSHRA, "webmushra", test="one")
    import_ratings(engine, joined, "webmushra", test="joined")
    assert scores(engine, "joined") == scores(engine, "one")


def test_a_test_too_large_for_the_dense_mixed_model_gets_the_anova_and_says_why(monkeypatch):
    from evalkit.mushra import mixed
    from evalkit.mushra.omnibus import omnibus

    frame = pd.DataFrame(
        [
            {"participant": f"L{k}", "item": f"i{i}", "condition": c, "score": 50.0 + 10 * j + (k * 7 + i * 3) % 11}
            for k in range(6)
            for i in range(3)
            for j, c in enumerate(("a", "b", "c"))
        ]
    )
    monkeypatch.setattr(mixed, "MAX_DESIGN_CELLS", len(frame) * 5)
    result = omnibus(frame)
    assert result.model is None and result.anova is not None
    assert any("54 ratings of 6 listeners and 3 items would need" in note for note in result.notes)


@pytest.mark.parametrize(
    "content, said",
    [
        ("listener,item,condition,score\nL1,caf\u00e9,reference,100\n".encode("latin-1"), "not a readable UTF-8 CSV"),
        (b'listener,item,condition,score\nL1,i1,"' + b"x" * 200_000 + b'",50\n', "field larger than field limit"),
    ],
)
def test_a_long_table_that_is_not_utf8_csv_is_one_problem(engine, tmp_path, content, said):
    path = tmp_path / "ratings.csv"
    path.write_bytes(content)  # a spreadsheet's "CSV" in a Western European code page; a runaway quoted field
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, path, "long")
    (problem,) = caught.value.problems
    assert problem.startswith("ratings.csv: ") and said in problem


def test_a_nul_in_a_name_is_a_problem_and_in_a_comment_is_dropped(engine, tmp_path):
    """PostgreSQL refuses NUL in any text: a name holding one is named, a listener's comment loses it."""
    path = tmp_path / "mushra.csv"
    header = "session_test_id,session_uuid,trial_id,rating_stimulus,rating_score,rating_time,rating_comment\n"
    rows = ["t,u1,i1,reference,100,900,fine\x00", "t,u1,i1,anchor70,40,900,", "t,u1,i1,C\x001,50,900,"]
    path.write_text(header + "\n".join(rows) + "\n")
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, path, "webmushra")
    assert caught.value.problems == ["mushra.csv: line 4: condition 'C\\x001' holds a control character; remove it"]
    path.write_text(header + "\n".join(rows[:2]) + "\n")
    import_ratings(engine, path, "webmushra", screening="reference")
    written = pd.read_csv(export_ratings(engine, "t", tmp_path / "out.csv"))
    assert len(written) == 2


def test_webmushra_comments_survive_export_and_import(engine, tmp_path):
    import_ratings(engine, WEBMUSHRA, "webmushra", test="commented")
    written = export_ratings(engine, "commented", tmp_path / "mushra.csv", "webmushra")
    source, exported = pd.read_csv(WEBMUSHRA), pd.read_csv(written)
    key = ["trial_id", "rating_stimulus", "rating_score"]
    comments = source.dropna(subset=["rating_comment"])
    assert len(comments) > 0
    assert sorted(comments[key + ["rating_comment"]].itertuples(index=False)) == sorted(
        exported.dropna(subset=["rating_comment"])[key + ["rating_comment"]].itertuples(index=False)
    )


@pytest.mark.parametrize(
    "fmt, text",
    [
        ("long", "listener,item,condition,score,score\nL1,i1,reference,100,50\nL1,i1,anchor70,40,30\n"),
        (
            "webmushra",
            "session_test_id,session_uuid,trial_id,rating_stimulus,rating_score,Rating_Score\n"
            "t,u,i,reference,100,20\nt,u,i,anchor70,40,30\n",
        ),
    ],
)
def test_a_column_named_twice_is_refused_rather_than_one_chosen(engine, tmp_path, fmt, text):
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, path, fmt)
    assert caught.value.problems == [
        f"ratings.csv: line 1: column(s) {'score' if fmt == 'long' else 'rating_score'} appear more than once; keep one"
    ]


def test_a_blank_column_in_a_long_table_is_left_out(engine, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("listener,item,,condition,score\nL1,i1,,reference,100\nL1,i1,,anchor70,40\n")
    assert import_ratings(engine, path, "long").ratings == 2
    path.write_text("listener,item,,condition,score\nL1,i1,x,reference,100\nL1,i1,,anchor70,40\n")
    with pytest.raises(RatingsError, match=r"unknown column\(s\) \(a column without a name\)"):
        import_ratings(engine, path, "long")
