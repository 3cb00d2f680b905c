"""`evalkit report` for listening tests beside MUSHRA: each type's section and plot, and its agreement with the
metrics, on a real scored run and tests whose simulated listeners answer from the run's STOI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from listening_helpers import take_all
from scipy import stats
from sqlalchemy import select

import evalkit
from evalkit import listening
from evalkit.cli import main
from evalkit.listening.spec import spec_from_dict
from evalkit.listening.types.ab import bradley_terry, preference_matrix, preference_table
from evalkit.listening.types.acr import mos_table
from evalkit.listening.types.bs1116 import sdg_frame, sdg_table
from evalkit.report import build_report, render_html
from evalkit.report.agreement import system_level
from evalkit.report.html import report_sections
from evalkit.store import connect
from evalkit.store.models_mushra import MushraCondition, MushraItem

ROOT = evalkit.__file__.rsplit("/evalkit/", 1)[0]
MANIFEST = f"{ROOT}/data/demo/manifest.jsonl"
RUN = "typed-report"
CODECS = ["g711-mulaw", "amr-wb-6k6", "codec2-1600"]
LISTENERS = 4


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A run of 3 demo items through 3 codecs (STOI), its database and the items' STOI per codec."""
    root = tmp_path_factory.mktemp("typed-report")
    url = f"sqlite:///{root / 'results.db'}"
    evalkit.run(
        {
            "name": RUN,
            "dataset": MANIFEST,
            "limit": 3,
            "codecs": CODECS,
            "metrics": ["stoi"],
            "workers": 0,
            "database": url,
            "cache": str(root / "cache"),
        }
    )
    engine = connect(url)
    from evalkit.report.data import results_frame

    results = results_frame(engine, RUN)
    stoi = results[(results["metric"] == "stoi") & (results["status"] == "ok")].set_index(["item_id", "codec"])["value"]
    return engine, root, stoi


def create(engine, root, kind, **changes):
    data = {
        "type": kind,
        "name": f"{kind}-report",
        "manifest": MANIFEST,
        "items": sorted({i for i, _ in STOI_KEYS}),
        "conditions": CODECS,
        "sample_rate": 16000,
        "randomization": {"seed": 3},
        "training": {"items": []},
        **changes,
    }
    spec = spec_from_dict(data, base=root, source=f"{kind}.yaml")
    listening.create_test(engine, spec, stimulus_root=root / "stimuli", cache_root=root / "cache")
    listening.launch_test(engine, data["name"])


STOI_KEYS: list = []  # (item, codec) of the run, filled by the first test that needs them


def keys(engine):
    with engine.connect() as connection:
        conditions = dict(connection.execute(select(MushraCondition.id, MushraCondition.key)).all())
        items = dict(connection.execute(select(MushraItem.id, MushraItem.key)).all())
    return conditions, items


def take(engine, name, answer):
    """One listener through the test; `answer(item, conditions in slot order, page)` answers each page."""
    conditions, items = keys(engine)
    return take_all(
        engine,
        name,
        lambda entry, trial: answer(items[entry["item"]], [conditions[c] for c in entry["conditions"]], trial),
    )


def quality(stoi, rng):
    """A listener's sense of a stimulus: its STOI (the reference is perfect) with a little noise."""
    return lambda item, condition: (1.0 if condition == "reference" else stoi[(item, condition)]) + rng.normal(0, 0.01)


def acr_grade(value: float) -> int:
    return int(np.clip(round(1 + 4 * (value - 0.6) / 0.4), 1, 5))


@pytest.fixture(scope="module")
def tests_db(scored):
    """ACR, DCR, CCR, BS.1116, AB and ABX tests on the run's items and codecs, each taken by 4 listeners."""
    engine, root, stoi = scored
    STOI_KEYS[:] = list(stoi.index)
    rng = np.random.default_rng(8)
    hears = quality(stoi, rng)
    for kind in ("acr", "dcr", "ccr", "ab", "abx"):
        create(engine, root, kind)
    create(engine, root, "bs1116", training={"items": [STOI_KEYS[0][0]]})

    def acr(item, conditions, trial):
        return {"choice": acr_grade(hears(item, conditions[0]))}

    def dcr(item, conditions, trial):
        return {"choice": acr_grade(hears(item, conditions[1]))}

    def ccr(item, conditions, trial):  # the second against the first
        first, second = (hears(item, c) for c in conditions)
        return {"choice": int(np.clip(round((second - first) * 8), -3, 3))}

    def ab(item, conditions, trial):
        a, b = (hears(item, c) for c in conditions)
        return {"choice": trial.stimuli[0] if a >= b else trial.stimuli[1]}

    def abx(item, conditions, trial):  # hears X right when A and B differ enough
        a, b, x = conditions
        right = 0 if x == a else 1
        sure = abs(stoi.get((item, a), 1.0) - stoi.get((item, b), 1.0)) > 0.05
        return {"choice": trial.stimuli[right if sure or rng.random() < 0.5 else 1 - right]}

    def bs1116(item, conditions, trial):
        grades = [
            5.0 if c == "reference" else round(float(np.clip(1 + 4 * (hears(item, c) - 0.6) / 0.4, 1, 4.9)), 1)
            for c in conditions
        ]
        return dict(zip(trial.stimuli, grades))

    answers = {"acr": acr, "dcr": dcr, "ccr": ccr, "ab": ab, "abx": abx, "bs1116": bs1116}
    for kind, answer in answers.items():
        for _ in range(LISTENERS):
            take(engine, f"{kind}-report", answer)
    return engine, stoi


def section(report, id):
    return next(s for s in report_sections(report) if s.id == id)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "key"), [("acr", "mos"), ("dcr", "dmos"), ("ccr", "cmos"), ("bs1116", "sdg")])
def test_score_types_get_bars_with_cis_and_agree_with_stoi(tests_db, kind, key):
    engine, _ = tests_db
    report = build_report(engine, RUN, mushra=f"{kind}-report", n_boot=200)
    typed = report.typed
    assert typed is not None and typed.name == kind and report.listening.test == f"{kind}-report"
    kept = typed.loaded.kept
    expected = sdg_table(sdg_frame(kept)) if kind == "bs1116" else mos_table(kept).rename(columns={"mos": key})
    pd.testing.assert_frame_equal(typed.tables[key], expected)
    listening_part = section(report, "listening")
    assert not listening_part.missing and listening_part.figures[0].id == f"{kind}-{key}"
    assert listening_part.figures[0].uri.startswith("data:image/svg+xml;base64,")
    shown = listening_part.tables[0]
    values = {row[0].text: float(row[shown.columns.index(key)].value) for row in shown.rows}
    assert values == pytest.approx(expected.set_index("condition")[key].to_dict())

    # agreement: the type's score per condition against STOI over the same stimuli, as scipy computes it
    system = typed.agreement[(typed.agreement["metric"] == "stoi") & (typed.agreement["level"] == "system")]
    points = system_level(typed.stimuli[typed.stimuli["metric"] == "stoi"])
    assert set(points["condition"]) == set(CODECS)  # the reference is left out
    for method, reference in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        r = system.set_index("method").loc[method, "r"]
        assert r == pytest.approx(reference(points["value"], points["score"]).statistic)
    stimulus = typed.agreement[(typed.agreement["metric"] == "stoi") & (typed.agreement["level"] == "stimulus")]
    assert stimulus.set_index("method").loc["pearson", "r"] > 0.7  # the listeners answered from STOI
    agreement = section(report, "agreement")
    assert not agreement.missing and agreement.figures and agreement.tables[0].id == "agreement-system"
    html = render_html(report)
    assert f"Listening test ({typed.loaded.type.title})" in html and "MUSHRA score" not in html


@pytest.mark.slow
def test_bs1116_section_shows_each_listeners_screening(tests_db):
    engine, _ = tests_db
    report = build_report(engine, RUN, mushra="bs1116-report", n_boot=50)
    tables = {t.id: t for t in section(report, "listening").tables}
    screening = tables["bs1116-screening"]
    assert len(screening.rows) == LISTENERS and "p_value" in screening.columns
    assert (report.typed.tables["sdg"]["sdg"] < 0).all()


@pytest.mark.slow
def test_ab_section_has_preferences_bradley_terry_and_a_matrix(tests_db):
    engine, stoi = tests_db
    report = build_report(engine, RUN, mushra="ab-report", n_boot=50)
    typed = report.typed
    kept = typed.loaded.kept
    pd.testing.assert_frame_equal(typed.tables["preferences"], preference_table(kept))
    pd.testing.assert_frame_equal(typed.tables["bradley_terry"], bradley_terry(kept))
    best = stoi.groupby(level="codec").mean().idxmax()
    assert typed.tables["bradley_terry"]["condition"].iloc[0] == best  # the listeners preferred higher STOI
    matrix = preference_matrix(kept)
    for row in typed.tables["preferences"].itertuples():
        assert matrix.loc[row.first, row.second] == pytest.approx(row.first_share)
        assert matrix.loc[row.first, row.second] + matrix.loc[row.second, row.first] == pytest.approx(1.0)
    part = section(report, "listening")
    assert [t.id for t in part.tables] == ["ab-preferences", "ab-bradley-terry"]
    assert [f.id for f in part.figures] == ["ab-preference-matrix"]
    agreement = section(report, "agreement")
    assert not agreement.missing and [t.id for t in agreement.tables] == ["agreement-system"]
    strengths = typed.tables["bradley_terry"].set_index("condition")["strength"]
    means = stoi.groupby(level="codec").mean()[strengths.index]
    rows = typed.agreement.set_index("method")
    assert rows.loc["spearman", "r"] == pytest.approx(stats.spearmanr(means, strengths).statistic)
    assert rows.loc["spearman", "r"] > 0 and rows.loc["spearman", "n"] == 3


@pytest.mark.slow
def test_abx_section_and_the_report_cli(tests_db, tmp_path, capsys):
    engine, _ = tests_db
    report = build_report(engine, RUN, mushra="abx-report", n_boot=50)
    part = section(report, "listening")
    assert [t.id for t in part.tables] == ["abx-by-pair", "abx-by-listener"]
    assert section(report, "agreement").missing == [
        "ABX identification answers are choices: no score per stimulus to correlate with the metrics"
    ]
    by_pair = report.typed.tables["by_pair"]
    assert by_pair["trials"].sum() == LISTENERS * 3 * 3  # 3 items x 3 pairs of codecs each
    out = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                "--run",
                RUN,
                "--mushra",
                "acr-report",
                "-o",
                str(out),
                "--database",
                str(engine.url),
                "--figures",
                str(tmp_path / "figures"),
            ]
        )
        == 0
    )
    assert "MOS per condition" in out.read_text() and (tmp_path / "figures" / "acr-mos.svg").exists()


@pytest.mark.slow
def test_select_items_and_power_from_a_pilot_through_the_cli(tests_db, capsys):
    from evalkit.listening.analysis import load_test
    from evalkit.listening.items import select_items
    from evalkit.listening.power import listeners_needed, pilot_spread
    from evalkit.report.data import load_run

    engine, _ = tests_db
    url = str(engine.url)
    capsys.readouterr()
    assert main(["listening", "select-items", "--run", RUN, "--count", "2", "--by", "spread", "--database", url]) == 0
    expected = select_items(load_run(engine, RUN).results, 2, "spread")
    assert f"items: [{', '.join(expected['item'])}]" in capsys.readouterr().out
    assert main(["listening", "select-items", "--run", RUN, "--database", url]) == 1  # one metric: no disagreement
    assert "compares metrics" in capsys.readouterr().err
    assert (
        main(["listening", "power", "--pilot", "acr-report", "--effect", "0.5", "--items", "3", "--database", url]) == 0
    )
    kept = load_test(engine, "acr-report").kept
    spread = pilot_spread(kept[kept["condition"] != "reference"])
    assert f"listeners needed: {listeners_needed(0.5, spread, 3)} " in capsys.readouterr().out
    # the difference two codecs show on STOI in the run, carried onto the ACR scale by the pilot's own slope
    assert (
        main(
            [
                "listening",
                "power",
                "--pilot",
                "acr-report",
                "--run",
                RUN,
                "--metric",
                "stoi",
                "--codecs",
                "g711-mulaw",
                "codec2-1600",
                "--items",
                "3",
                "--database",
                url,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    from evalkit.listening.power import run_difference, scale_slope
    from evalkit.report.agreement import system_level
    from evalkit.report.listening import stimulus_frame

    run = load_run(engine, RUN)
    difference, items = run_difference(run.results, "stoi", "g711-mulaw", "codec2-1600")
    stimuli = stimulus_frame(kept, run.results, leave_out={"reference"})
    points = system_level(stimuli[stimuli["metric"] == "stoi"])
    slope = scale_slope(points)
    assert slope == pytest.approx(stats.linregress(points["value"], points["score"]).slope)
    assert f"= {difference * slope:.3g} on the test's scale" in out and items == 3
    assert f"listeners needed: {listeners_needed(difference * slope, spread, 3)} " in out
    assert (
        main(["listening", "power", "--pilot", "ab-report", "--effect", "0.5", "--items", "3", "--database", url]) == 1
    )
    assert capsys.readouterr().err.strip() == (
        "evalkit: error: test 'ab-report' is of type ab; the power analysis takes MUSHRA or ACR pilots"
    )


@pytest.mark.slow
def test_a_typed_test_without_completed_sessions_says_so_in_both_sections(tests_db, scored):
    engine, root, _ = scored
    create(engine, root, "dcr", name="dcr-empty")
    listening.invite(engine, "dcr-empty")
    report = build_report(engine, RUN, mushra="dcr-empty", n_boot=50)
    message = "DCR (ITU-T P.800) test 'dcr-empty': no completed sessions yet"
    assert section(report, "listening").missing == [message] and section(report, "agreement").missing == [message]
    assert "no completed sessions yet" in render_html(report)


def test_preference_matrix_of_a_small_known_example():
    frame = pd.DataFrame(
        [
            {"condition": w, "other": other, "chosen": c}
            for w, other, c, n in (("a", "b", "a", 3), ("a", "b", "b", 1), ("b", "c", "c", 2), ("a", "b", None, 5))
            for _ in range(n)
        ]
    )
    matrix = preference_matrix(frame)
    assert matrix.loc["a", "b"] == 0.75 and matrix.loc["b", "a"] == 0.25 and matrix.loc["c", "b"] == 1.0
    assert np.isnan(matrix.loc["a", "c"]) and np.isnan(matrix.loc["a", "a"])


@pytest.mark.slow
def test_the_app_view_and_ratings_stats_show_each_types_own_statistics(tests_db, capsys):
    """One implementation: the app's view and `evalkit ratings stats` show the tables the report shows."""
    from evalkit.listening.analysis import load_test
    from evalkit.report.app_views import agreement_view
    from evalkit.report.data import load_run

    engine, _ = tests_db
    run = load_run(engine, RUN)
    expected = {
        "acr": ["acr-mos"],
        "dcr": ["dcr-dmos"],
        "ccr": ["ccr-cmos"],
        "bs1116": ["bs1116-sdg", "bs1116-screening"],
        "ab": ["ab-preferences", "ab-bradley-terry"],
        "abx": ["abx-by-pair", "abx-by-listener"],
    }
    for kind, ids in expected.items():
        name = f"{kind}-report"
        view = agreement_view(engine, run, name, n_boot=50)
        assert name in view.tests and [i for i, _, _ in view.statistics] == ids, kind
        report = build_report(engine, RUN, mushra=name, n_boot=50)
        assert [t.id for t in section(report, "listening").tables] == ids
        assert view.title == report.typed.loaded.type.title and view.analysis.conditions is None
        if kind == "abx":
            assert view.analysis.agreement is None and "are choices" in view.analysis.message
        else:
            pd.testing.assert_frame_equal(view.analysis.agreement, report.typed.agreement)
        assert (view.figure is not None) == (kind not in ("ab", "abx"))
        assert capsys.readouterr() is not None and main(["ratings", "stats", name, "--database", str(engine.url)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"type: {view.title}\n") and "Repeated-measures" not in out
        for _, caption, _ in view.statistics:
            assert f"{caption}:" in out
    # the numbers are the library's: MOS with t intervals from the kept ratings
    kept = load_test(engine, "acr-report").kept
    mos = mos_table(kept)
    out = (main(["ratings", "stats", "acr-report", "--database", str(engine.url)]), capsys.readouterr().out)[1]
    for row in mos.itertuples():
        assert f"{row.mos:.2f}" in out and f"{row.ci_high:.2f}" in out
    # an ABX listener's row carries scipy's one-sided binomial p
    by_listener = agreement_view(engine, run, "abx-report", n_boot=50).statistics[1][2]
    first = by_listener.iloc[0]
    p = stats.binomtest(int(first["correct"]), int(first["trials"]), 0.5, alternative="greater").pvalue
    assert first["p_value"] == pytest.approx(p)


@pytest.mark.slow
def test_the_app_pages_show_a_typed_tests_statistics(tests_db, monkeypatch):
    """The Streamlit pages (AppTest): the agreement page on an ACR and an AB test and the admin's results on a
    BS.1116 test show the type's tables and plots, no MUSHRA statistics."""
    pytest.importorskip("streamlit")
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from evalkit.mushra.auth import hash_password, sign_in

    engine, _ = tests_db
    entry = Path(ROOT) / "app" / "streamlit_app.py"
    monkeypatch.setenv("EVALKIT_DB_URL", str(engine.url))
    monkeypatch.syspath_prepend(str(entry.parent))
    import ui

    session = sign_in(engine, "correct horse", "127.0.0.1", configured=hash_password("correct horse", n=2**10))
    monkeypatch.setattr(ui, "admin_cookie", lambda: session.token)
    app = AppTest.from_file(str(entry), default_timeout=60)
    app.run()
    app.switch_page("views/mushra_metrics.py")
    app.run()
    for name, headings, images in (
        ("acr-report", ["MOS per condition (t-based 95 % CI)"], 2),
        ("ab-report", ["Preference per pair (share: the first preferred)", "Bradley-Terry strengths"], 1),
    ):
        next(box for box in app.selectbox if box.label == "Listening test").select(name).run()
        assert not app.exception, [e.value for e in app.exception]
        shown = [h.value for h in app.subheader]
        assert all(any(s.startswith(h) for s in shown) for h in headings), shown
        assert "Listener scores per condition" not in shown and len(app.get("image")) == images
        assert app.title[0].value == "Listening tests vs metrics"
    app.switch_page("views/mushra_admin.py")
    app.run()
    next(box for box in app.sidebar.selectbox if box.label == "Test").select("bs1116-report").run()
    assert not app.exception, [e.value for e in app.exception]
    shown = [h.value for h in app.subheader]
    assert "SDG per condition (t-based 95 % CI)" in shown and "Post-screening (BS.1534-3)" not in shown
    assert len(app.get("image")) == 1 and "BS.1116" in " ".join(c.value for c in app.caption)
