"""Ratings from anywhere: webMUSHRA and BeaqleJS exports (fixtures written from their documented formats),
long tables, one error per problem with its line, export -> import round trips with the same statistics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import take_mushra_test
from sqlalchemy import select

from evalkit import mushra
from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.mushra.design import test_setup
from evalkit.mushra.omnibus import omnibus
from evalkit.mushra.ratings import RatingsError, export_ratings, import_ratings
from evalkit.mushra.stats import condition_summary
from evalkit.report.listening import load_listening
from evalkit.store.models_mushra import MushraCondition, MushraSession

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ratings"
WEBMUSHRA = FIXTURES / "webmushra_mushra.csv"
BEAQLEJS = FIXTURES / "beaqlejs"
BEAQLE_MAP = {
    "test": "beaqle-study",
    "anchors": ["1", "lp70"],
    "mid_anchor": "lp70",
    "conditions": {"1": {"name": "lp35"}, "2": {"name": "lp70"}, "3": "g711-alaw", "4": {"name": "amr-wb"}},
}


def write_map(tmp_path: Path, data: dict, name: str = "map.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def statistics(engine, test: str) -> dict:
    """What an analysis reports: screening, per-condition summary, omnibus and contrasts (names aside)."""
    listening = load_listening(engine, test)
    kept = listening.kept
    summary = condition_summary(kept, n_boot=500).drop(columns=["condition"]).to_numpy(float)
    result = omnibus(kept)
    return {
        "excluded": sorted(listening.excluded.values()),
        "summary": summary,
        "design": result.design,
        "omnibus": result.table()["statistic"].tolist(),
        "contrasts": result.contrasts[["estimate", "se", "p_adjusted"]].to_numpy(float),
    }


def assert_same_statistics(a: dict, b: dict) -> None:
    assert a["excluded"] == b["excluded"] and a["design"] == b["design"] and a["omnibus"] == b["omnibus"]
    np.testing.assert_allclose(a["summary"], b["summary"], rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(a["contrasts"], b["contrasts"], rtol=1e-6, atol=1e-9)


# -- webMUSHRA ------------------------------------------------------------------------------------------


def test_webmushra_export_imports_with_its_roles_answers_and_screening(engine, tmp_path):
    result = import_ratings(engine, WEBMUSHRA, "webmushra", map_path=write_map(tmp_path, {"items": {"trial1": None}}))
    assert (result.test, result.listeners, result.items, result.ratings, result.dropped) == (
        "codec_study",
        6,
        4,
        144,
        36,
    )
    setup = test_setup(engine, "codec_study")
    kinds = setup.conditions.set_index("key")["kind"].to_dict()
    assert kinds == {
        "reference": "reference",
        "anchor35": "anchor",
        "anchor70": "anchor",
        "C1": "codec",
        "C2": "codec",
        "C3": "codec",
    }
    assert setup.order()[:3] == ["reference", "anchor35", "anchor70"] and setup.origin == "webmushra"
    assert setup.screening.mid_anchor == "anchor70" and setup.imported["files"][0]["name"] == WEBMUSHRA.name
    listening = load_listening(engine, "codec_study")
    assert len(listening.excluded) == 1  # the listener who rated the hidden reference 62 on 2 of 4 items
    (reason,) = listening.excluded.values()
    assert "hidden reference below 90 on 50%" in reason
    frame = mushra.ratings_frame(engine, "codec_study")
    assert frame["participant"].str.fullmatch(r"[0-9a-f-]{36}").all()  # webMUSHRA's session uuids
    with engine.connect() as connection:
        answers = connection.execute(select(MushraSession.answers)).scalars().all()
    assert {a["email"] for a in answers} == {f"listener{k}@example.org" for k in range(6)}


def test_webmushra_round_trip_keeps_the_statistics(engine, tmp_path):
    import_ratings(engine, WEBMUSHRA, "webmushra", map_path=write_map(tmp_path, {"items": {"trial1": None}}))
    before = statistics(engine, "codec_study")
    path = export_ratings(engine, "codec_study", tmp_path / "mushra.csv", "webmushra")
    exported = pd.read_csv(path)
    assert list(exported.columns) == [
        "session_test_id",
        "session_uuid",
        "trial_id",
        "rating_stimulus",
        "rating_score",
        "rating_time",
        "rating_comment",
    ]
    original = pd.read_csv(WEBMUSHRA)
    assert set(exported["rating_time"]) <= set(original["rating_time"])  # times survive (ms)
    import_ratings(engine, path, "webmushra", test="again")
    assert_same_statistics(before, statistics(engine, "again"))


# -- BeaqleJS -------------------------------------------------------------------------------------------


def test_beaqlejs_results_import_with_a_map_linking_a_codec_card(engine, tmp_path):
    result = import_ratings(engine, BEAQLEJS, "beaqlejs", map_path=write_map(tmp_path, BEAQLE_MAP))
    assert (result.test, result.listeners, result.items, result.ratings) == ("beaqle-study", 3, 5, 60)
    setup = test_setup(engine, "beaqle-study")
    table = setup.conditions.set_index("key")
    assert table.loc["g711-alaw", "card"] == "g711-alaw"
    with engine.connect() as connection:
        card_hash = connection.execute(
            select(MushraCondition.card_hash).where(MushraCondition.key == "g711-alaw")
        ).scalar()
    from evalkit.cards import find_card

    assert card_hash == find_card("g711-alaw").config_hash
    assert table.loc["Reference", "kind"] == "reference" and set(table.index[table["kind"] == "anchor"]) == {
        "lp35",
        "lp70",
    }
    assert setup.scored_as()["g711-alaw"] == "g711-alaw"
    listening = load_listening(engine, "beaqle-study")
    assert set(listening.ratings["participant"]) == {"anna", "ben", "chloe"}
    design = omnibus(listening.kept).design
    assert design.kind == "incomplete" and design.items_per_listener == (4, 4)


def test_beaqlejs_without_a_mid_anchor_asks_for_one(engine, tmp_path):
    with pytest.raises(RatingsError, match="needs the mid anchor") as caught:
        import_ratings(engine, BEAQLEJS, "beaqlejs")
    assert len(caught.value.problems) == 1
    result = import_ratings(engine, BEAQLEJS, "beaqlejs", test="ref-only", screening="reference")
    assert result.screening.rule == "reference" and result.screening.reference == "Reference"


def test_beaqlejs_item_from_the_reference_file_and_condition_from_its_folder(engine, tmp_path):
    data = {
        "beaqlejs": {"item": "reference", "condition": "folder"},
        "reference": "Reference",
        "anchors": ["lp35"],
        "mid_anchor": "lp70",
        "items": {"s05": None},
    }
    result = import_ratings(engine, BEAQLEJS, "beaqlejs", test="folders", map_path=write_map(tmp_path, data))
    assert result.conditions == ("Reference", "amr", "lp35", "lp70", "opus12") and result.items == 4


# -- one error per problem, with its line ------------------------------------------------------------


def test_a_bad_webmushra_file_gets_one_error_per_problem_and_nothing_is_stored(engine, tmp_path):
    lines = WEBMUSHRA.read_text().splitlines()
    header, rows = lines[0], lines[1:25]  # the first listener's 24 ratings (4 trials x 6 conditions)
    bad = [header + ",mood"] + [row + "," for row in rows]
    fields = bad[3].split(",")
    fields[6] = "140"  # line 4: out of range
    bad[3] = ",".join(fields)
    fields = bad[4].split(",")
    fields[6] = "loud"  # line 5: not a number
    bad[4] = ",".join(fields)
    bad.append(bad[6])  # line 26: a duplicate of line 7
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(RatingsError) as caught:
        import_ratings(engine, path, "webmushra")
    problems = caught.value.problems
    assert any("line 1: unknown column(s) mood" in p for p in problems)
    assert any("line 4: score 140 is outside 0-100" in p for p in problems)
    assert any("line 5: rating_score 'loud' is not a number" in p for p in problems)
    assert any("line 26: duplicate rating" in p and "first at bad.csv: line 7" in p for p in problems)
    assert len(problems) == 4
    assert mushra.list_tests(engine) == []


def test_a_listener_without_a_reference_rating_is_named(engine, tmp_path):
    frame = pd.DataFrame(
        {
            "listener": ["a", "a", "b", "b"],
            "item": ["x", "x", "x", "x"],
            "condition": ["reference", "codec", "codec", "anchor-lp70"],
            "score": [100, 50, 40, 30],
        }
    )
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(RatingsError, match=r"long.csv: line 4: listener 'b' has no rating of the hidden reference"):
        import_ratings(engine, path, "long")


def test_long_tables_refuse_unknown_and_missing_columns(engine, tmp_path):
    path = tmp_path / "long.csv"
    pd.DataFrame({"rater": ["a"], "item": ["x"], "condition": ["c"], "score": [5], "colour": ["red"]}).to_csv(
        path, index=False
    )
    with pytest.raises(RatingsError, match=r"line 1: missing column\(s\) listener; unknown column\(s\) rater, colour"):
        import_ratings(engine, path, "long")


def test_declared_conditions_that_do_not_exist_are_errors(engine, tmp_path):
    with pytest.raises(
        RatingsError,
        match=r"the hidden reference 'ref' is not a condition of this file "
        r"\(conditions: C1, C2, C3, anchor35, anchor70, reference\)",
    ):
        import_ratings(engine, WEBMUSHRA, "webmushra", reference="ref")
    with pytest.raises(ConfigError, match="conditions.C1.card: unknown codec card 'opus-99k'"):
        import_ratings(engine, WEBMUSHRA, "webmushra", map_path=write_map(tmp_path, {"conditions": {"C1": "opus-99k"}}))


def test_replacing_an_import_needs_replace_and_never_touches_a_native_test(engine, tmp_path):
    import_ratings(engine, WEBMUSHRA, "webmushra")
    with pytest.raises(ConfigError, match="--replace"):
        import_ratings(engine, WEBMUSHRA, "webmushra")
    assert (
        import_ratings(engine, WEBMUSHRA, "webmushra", replace=True, screening="reference").screening.rule
        == "reference"
    )
    assert test_setup(engine, "codec_study").screening.rule == "reference"


# -- evalkit's own tests: export -> import -> the same statistics ------------------------------------


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    import soundfile as sf

    t = np.arange(24000) / 16000
    for k in range(5):
        sf.write(folder / f"t{k}.wav", 0.1 * np.sin(2 * np.pi * (200 + 50 * k) * t), 16000, subtype="PCM_16")
    return folder


def _rate_native_test(engine, tones, tmp_path) -> None:
    from evalkit.mushra.spec import spec_from_dict

    spec = spec_from_dict(
        {
            "name": "native",
            "items": [{"id": f"t{k}", "path": f"t{k}.wav"} for k in range(5)],
            "conditions": ["g711-alaw"],
            "sample_rate": 16000,
            "randomization": {"seed": 3},
            "open_link": True,
        },
        base=tones,
        source="native.yaml",
    )
    mushra.create_test(engine, spec, stimulus_root=tmp_path / "stimuli", cache_root=tmp_path / "cache")
    info = mushra.launch_test(engine, "native")
    rng = np.random.default_rng(5)
    for _ in range(4):  # blind to which slider is which: scores above 90 keep everyone (the anchor rule skips)
        take_mushra_test(engine, info.open_token, lambda k: rng.integers(91, 101))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_native_test_export_import_round_trip(engine, tones, tmp_path, suffix):
    _rate_native_test(engine, tones, tmp_path)
    path = export_ratings(engine, "native", tmp_path / f"native{suffix}")
    import_ratings(engine, path, "long", test="native-copy")
    setup = test_setup(engine, "native-copy")
    assert setup.conditions.set_index("key")["kind"].to_dict() == {
        "reference": "reference",
        "anchor-lp35": "anchor",
        "anchor-lp70": "anchor",
        "g711-alaw": "codec",
    }
    assert setup.screening == test_setup(engine, "native").screening  # kinds and names carry the roles
    copy, original = (mushra.ratings_frame(engine, name) for name in ("native-copy", "native"))
    assert sorted(copy["participant"]) == sorted(original["participant"])  # codes come back as listener ids
    assert_same_statistics(statistics(engine, "native"), statistics(engine, "native-copy"))


# -- the command line -----------------------------------------------------------------------------------


def test_cli_imports_exports_and_prints_statistics(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    shutil.copytree(BEAQLEJS, tmp_path / "beaqle")
    args = ["ratings", "import", str(tmp_path / "beaqle"), "--format", "beaqlejs", "--database", url]
    assert main(args) == 1 and "needs the mid anchor" in capsys.readouterr().err
    assert main(args + ["--map", str(write_map(tmp_path, BEAQLE_MAP))]) == 0
    assert "imported 60 ratings of 3 listeners" in capsys.readouterr().out
    assert main(["ratings", "stats", "beaqle-study", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "design: incomplete" in out and "linear mixed model" in out and "pairwise contrasts" in out
    target = tmp_path / "out.parquet"
    assert main(["ratings", "export", "beaqle-study", "-o", str(target), "--database", url]) == 0
    assert len(pd.read_parquet(target)) == 60
    assert main(["ratings", "export", "beaqle-study", "-o", str(target), "--database", url]) == 1
    assert "--force" in capsys.readouterr().err
    assert (
        main(
            [
                "ratings",
                "export",
                "beaqle-study",
                "-o",
                str(tmp_path / "w.parquet"),
                "--format",
                "webmushra",
                "--database",
                url,
            ]
        )
        == 1
    )


def test_cli_choices_match_the_library():
    from evalkit.cli import build_parser
    from evalkit.mushra.ratings import EXPORT_FORMATS, FORMATS
    from evalkit.mushra.screening import RULES

    ratings = build_parser()._subparsers._group_actions[0].choices["ratings"]
    commands = ratings._subparsers._group_actions[0].choices
    choices = {a.dest: tuple(a.choices) for name in ("import", "export") for a in commands[name]._actions if a.choices}
    assert choices["ratings_format"] in (FORMATS, EXPORT_FORMATS)
    assert tuple(next(a.choices for a in commands["import"]._actions if a.dest == "screening")) == RULES
    assert tuple(next(a.choices for a in commands["import"]._actions if a.dest == "ratings_format")) == FORMATS
    assert tuple(next(a.choices for a in commands["export"]._actions if a.dest == "ratings_format")) == EXPORT_FORMATS


def test_condition_rows_record_the_declared_kinds(engine):
    import_ratings(engine, WEBMUSHRA, "webmushra", test="kinds")
    with engine.connect() as connection:
        kinds = dict(connection.execute(select(MushraCondition.key, MushraCondition.kind)).all())
    assert kinds["reference"] == "reference" and kinds["anchor70"] == "anchor" and kinds["C2"] == "codec"
