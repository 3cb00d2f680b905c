"""Paper-ready results: item-resampled agreement (weighted statistics against scipy on duplicated data), the
reference left out, ITU-T P.1401 errors, clipped intervals and small n, paired codec tests, one kbit/s,
display names, figures alone, no screen-only text in the PDF, and a run without bitrates."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.mushra.stats import condition_summary
from evalkit.report import ReportOptions, build_report, load_run, render_html, write_figures, write_report
from evalkit.report.agreement import agreement_table, system_level
from evalkit.report.compare import compare_codecs
from evalkit.report.leaderboard import codec_table, leaderboard
from evalkit.report.listening import stimulus_frame
from evalkit.report.names import DisplayNames, load_names
from evalkit.report.p1401 import monotonic_cubic, prediction_errors
from evalkit.report.weighted import weighted_correlations
from evalkit.store import connect, ensure_run, summary, write_results, write_roundtrips

RUN = "paper"
CODECS = {"reference": 0.0, "opus-12k": -1.0, "amr-wb-12k65": -1.6, "g711-alaw": -0.6, "codec2-3200": -2.4}


def _results(items: int = 8, seed: int = 0) -> list[dict]:
    """stoi and pesq_wb per item: the hidden reference is perfect, codecs worse by their offset plus item noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for codec, offset in CODECS.items():
        for k in range(items):
            noise = rng.normal(0, 0.15)
            values = {"pesq_wb": min(4.64, 4.5 + offset + noise), "stoi": min(1.0, 1.0 + offset / 10 + noise / 20)}
            rows += [
                {
                    "run_id": RUN,
                    "item_id": f"i{k}",
                    "codec": codec,
                    "codec_hash": "h",
                    "metric": m,
                    "metric_version": "1",
                    "status": "ok",
                    "value": v,
                    "dataset": "d",
                }
                for m, v in values.items()
            ]
    return rows


@pytest.fixture
def run_db(tmp_path):
    """A run with results and no round trips (so no bitrate), in a fresh SQLite database."""
    engine = connect(f"sqlite:///{tmp_path / 'paper.db'}")
    ensure_run(engine, RUN, {"name": RUN, "metrics": ["pesq_wb", "stoi"]}, "0")
    write_results(engine, _results())
    return engine


def _ratings(items: int = 8, listeners: int = 10, seed: int = 1, per_listener: int | None = None) -> pd.DataFrame:
    """Listeners who follow PESQ (plus noise); each rates `per_listener` items (all by default)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(listeners):
        chosen = [(p + k) % items for k in range(per_listener or items)]
        for k in chosen:
            for codec, offset in CODECS.items():
                score = 100 - rng.uniform(0, 5) if codec == "reference" else 75 + 18 * offset + rng.normal(0, 8)
                rows.append(
                    {
                        "participant": f"L{p}",
                        "item": f"i{k}",
                        "condition": codec,
                        "score": float(np.clip(score, 0, 100)),
                    }
                )
    return pd.DataFrame(rows)


# -- weighted bootstrap statistics -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall"])
def test_weighted_correlations_equal_scipy_on_the_duplicated_rows(method):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 15).astype(float)  # ties on purpose
    y = x + rng.integers(0, 4, 15)
    weights = rng.integers(0, 4, size=(30, 15)).astype(float)
    expected = []
    for w in weights:
        a, b = np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int))
        expected.append(
            getattr(stats, {"pearson": "pearsonr", "spearman": "spearmanr", "kendall": "kendalltau"}[method])(
                a, b
            ).statistic
            if np.ptp(a) and np.ptp(b)
            else math.nan
        )
    assert weighted_correlations(x, y, weights, method) == pytest.approx(expected, abs=1e-10, nan_ok=True)


# -- agreement --------------------------------------------------------------------------------------


def test_agreement_leaves_out_the_reference_by_default(run_db):
    ratings = _ratings()
    default = build_report(run_db, RUN, mushra="t", ratings=ratings, n_boot=200)
    assert "reference" not in set(default.stimuli["condition"])
    included = build_report(
        run_db, RUN, mushra="t", ratings=ratings, n_boot=200, options=ReportOptions(include_reference=True)
    )
    assert "reference" in set(included.stimuli["condition"])
    pick = {
        name: r.agreement.set_index(["metric", "level", "method"])
        for name, r in (("default", default), ("included", included))
    }
    assert pick["default"].loc[("pesq_wb", "system", "pearson"), "n"] == 4
    assert pick["included"].loc[("pesq_wb", "system", "pearson"), "n"] == 5
    html = render_html(default)
    assert "Left out: reference" in html and "--include-reference" in html


def test_system_level_listener_mean_is_the_summary_mean_on_incomplete_data(run_db):
    ratings = _ratings(listeners=9, per_listener=5)  # items rated by different numbers of listeners
    stimuli = stimulus_frame(ratings, load_run(run_db, RUN).results)
    system = system_level(stimuli[stimuli["metric"] == "stoi"]).set_index("condition")["score"]
    summary_means = condition_summary(ratings, n_boot=100).set_index("condition")["mean"]
    assert system.to_dict() == pytest.approx(summary_means[system.index].to_dict(), abs=1e-12)


def test_agreement_intervals_resample_items():
    rng = np.random.default_rng(4)
    items, conditions = 10, 6
    item_shift = rng.normal(0, 10, items)  # items move listeners and the metric together: clustered
    frame = pd.DataFrame(
        [
            {
                "metric": "m",
                "item": f"i{i}",
                "condition": f"c{c}",
                "value": c + item_shift[i] / 5,
                "score": 10 * c + item_shift[i] + rng.normal(0, 3),
                "ratings": 4,
            }
            for i in range(items)
            for c in range(conditions)
        ]
    )
    frame["score_sq"] = frame["score"] ** 2 * 4
    table = agreement_table(frame, n_boot=500, seed=2).set_index(["level", "method"])
    again = agreement_table(frame, n_boot=500, seed=2).set_index(["level", "method"])
    assert table.equals(again) and (table["items"] == items).all()
    for level in ("system", "stimulus"):
        row = table.loc[(level, "pearson")]
        assert row["ci_low"] <= row["r"] <= row["ci_high"]
    assert table.loc[("system", "pearson"), "n"] == conditions and table.loc[("stimulus", "pearson"), "n"] == 60


# -- ITU-T P.1401 --------------------------------------------------------------------------------------


def test_monotonic_cubic_is_monotonic_and_exact_on_a_monotonic_cubic():
    x = np.linspace(1, 4.5, 12)
    y = 5 + 3 * (x - 1) + 0.8 * (x - 1) ** 3
    assert np.allclose(monotonic_cubic(x, y)(x), y, atol=1e-5)
    rng = np.random.default_rng(5)
    wiggly = 50 + 10 * np.sin(3 * x) + 8 * x + rng.normal(0, 1, len(x))  # unconstrained cubics would turn
    fitted = monotonic_cubic(x, wiggly)(np.linspace(1, 4.5, 200))
    assert np.all(np.diff(fitted) >= -1e-6)
    decreasing = monotonic_cubic(x, -wiggly, increasing=False)(np.linspace(1, 4.5, 200))
    assert np.all(np.diff(decreasing) <= 1e-6)


def test_p1401_rmse_and_epsilon_insensitive_rmse():
    x = np.linspace(1, 4, 9)
    y = 20 * x + np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0, 2.0, -2.5, 1.0])
    errors = y - monotonic_cubic(x, y)(x)
    rmse, star = prediction_errors(x, y, np.full(9, 1.5))
    assert rmse == pytest.approx(math.sqrt(np.sum(errors**2) / (9 - 4)))
    assert star == pytest.approx(math.sqrt(np.sum(np.maximum(0, np.abs(errors) - 1.5) ** 2) / (9 - 4)))
    assert star < rmse
    assert all(math.isnan(v) for v in prediction_errors(x[:4], y[:4], np.ones(4)))


def test_report_adds_p1401_rows_on_request(run_db):
    ratings = _ratings()
    report = build_report(run_db, RUN, mushra="t", ratings=ratings, n_boot=100, options=ReportOptions(p1401=True))
    methods = set(report.agreement["method"])
    assert {"rmse", "rmse*"} <= methods
    stimulus = report.agreement.set_index(["metric", "level", "method"]).loc[("pesq_wb", "stimulus", "rmse")]
    assert 0 < stimulus["r"] < 30 and "RMSE*" in render_html(report)


# -- objective results fit for a paper ------------------------------------------------------------------


def test_intervals_are_clipped_to_the_metric_range_and_small_n_is_flagged(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'small.db'}")
    ensure_run(engine, RUN, {"name": RUN}, "0")
    write_results(engine, [row for row in _results(items=3) if row["codec"] in ("opus-12k", "reference")])
    report = build_report(engine, RUN, n_boot=50)
    stoi = report.board.set_index(["codec", "metric"]).loc[("reference", "stoi")]
    assert stoi["ci_high"] <= 1.0 and report.board["ci_high"].le(4.644).all()  # PESQ-WB tops out at 4.644
    html = render_html(report)
    assert "small-n" in html and "n = 3 †" in html
    bootstrap = build_report(engine, RUN, n_boot=50, options=ReportOptions(ci="bootstrap"))
    row = bootstrap.board.set_index(["codec", "metric"]).loc[("opus-12k", "pesq_wb")]
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    with pytest.raises(ConfigError, match="unknown interval"):
        leaderboard(load_run(engine, RUN), ci="jackknife")


def test_paired_codec_tests_match_scipy_and_holm(run_db):
    results = load_run(run_db, RUN).results
    table = compare_codecs(results, "opus-12k", "g711-alaw").set_index("metric")
    wide = results[results["metric"] == "stoi"].pivot_table(index="item_id", columns="codec", values="value")
    expected = stats.wilcoxon(wide["opus-12k"] - wide["g711-alaw"]).pvalue
    assert table.loc["stoi", "p"] == pytest.approx(expected) and table.loc["stoi", "n"] == 8
    assert (table["p_adjusted"] >= table["p"]).all()
    paired_t = compare_codecs(results, "opus-12k", "g711-alaw", ["stoi"], test="t").iloc[0]
    assert paired_t["p"] == pytest.approx(stats.ttest_rel(wide["opus-12k"], wide["g711-alaw"]).pvalue)
    with pytest.raises(ConfigError, match="no results of codec 'opus-99k'"):
        compare_codecs(results, "opus-12k", "opus-99k")
    with pytest.raises(ConfigError, match="name two different codecs"):  # was a pandas traceback
        compare_codecs(results, "opus-12k", "opus-12k")


def test_cli_compare_prints_the_better_codec(run_db, tmp_path, capsys):
    url = str(run_db.url)
    assert main(["results", "--run", RUN, "--database", url, "--compare", "opus-12k", "codec2-3200"]) == 0
    out = capsys.readouterr().out
    assert "Wilcoxon signed-rank test across items; Holm over the 2 metrics" in out
    assert all(line.split()[-1] == "opus-12k" for line in out.splitlines()[2:4])
    assert main(["results", "--database", url, "--compare", "a", "b"]) == 1


def test_one_kbit_per_second_definition(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'kbps.db'}")
    ensure_run(engine, RUN, {"name": RUN}, "0")
    durations, bitrates = [1.0, 9.0], [20000.0, 10000.0]  # mean per item 15 kbit/s; weighted 11 kbit/s
    write_roundtrips(
        engine,
        [
            {
                "run_id": RUN,
                "item_id": f"i{k}",
                "codec": "c",
                "codec_hash": "h",
                "status": "ok",
                "bitrate": b,
                "duration": d,
            }
            for k, (b, d) in enumerate(zip(bitrates, durations))
        ],
    )
    write_results(
        engine,
        [
            {
                "run_id": RUN,
                "item_id": f"i{k}",
                "codec": "c",
                "codec_hash": "h",
                "metric": m,
                "metric_version": "1",
                "status": "ok",
                "value": v,
            }
            for k, b in enumerate(bitrates)
            for m, v in (("bitrate_kbps", b / 1000), ("stoi", 0.9))
        ],
    )
    stored = summary(engine, RUN).set_index("metric").loc["bitrate_kbps", "mean"]
    run = load_run(engine, RUN)
    board = leaderboard(run, include_cost=True).set_index("metric").loc["bitrate_kbps", "mean"]
    assert stored == pytest.approx(11.0) and board == pytest.approx(11.0)
    assert codec_table(run).set_index("codec").loc["c", "measured_kbps"] == pytest.approx(11.0)


def test_display_names_from_cards_and_a_names_file(tmp_path):
    names = DisplayNames()
    assert names.metric("pesq_wb") == "PESQ-WB (MOS-LQO)" and names.metric("stoi") == "STOI"
    assert names.codec("opus-16k-wb@bitrate=24000") == "opus-16k-wb (24 kbit/s)"
    path = tmp_path / "names.yaml"
    path.write_text("codecs: {opus-12k: Opus 12k}\nmetrics: {pesq_wb: PESQ}\n")
    custom = load_names(path)
    assert custom.codec("opus-12k") == "Opus 12k" and custom.metric("pesq_wb") == "PESQ (MOS-LQO)"
    path.write_text("colours: {}\n")
    with pytest.raises(ConfigError, match=r"names.yaml:1: colours: unknown key; allowed here: codecs, metrics"):
        load_names(path)
    path.write_text("codecs:\n  opus-12k: Opus 12k\n  g722-64k: ''\n")
    with pytest.raises(ConfigError, match=r"names.yaml:3: codecs.g722-64k: must be a non-empty string"):
        load_names(path)


def test_a_card_display_name_reaches_the_report(tmp_path, monkeypatch):
    from evalkit.cards import cards_dir
    from evalkit.report import codecinfo

    cards = tmp_path / "cards"  # added to the built-in cards, so under a name of its own
    cards.mkdir()
    text = (cards_dir() / "opus-12k.yaml").read_text().replace("name: opus-12k", "name: my-opus-12k")
    (cards / "my-opus-12k.yaml").write_text(text + "\ndisplay_name: Opus SILK 12k\n")
    monkeypatch.setenv("EVALKIT_CARDS", str(cards))
    codecinfo._cards.cache_clear()
    try:
        assert DisplayNames().codec("my-opus-12k") == "Opus SILK 12k"
        assert DisplayNames().codec("my-opus-12k@bitrate=8000") == "Opus SILK 12k (8 kbit/s)"
    finally:
        codecinfo._cards.cache_clear()


# -- a run without bitrates, figures alone, the PDF ---------------------------------------------------


def test_report_without_bitrate_rows_and_a_reference_codec_renders(run_db, tmp_path):
    report = build_report(run_db, RUN, mushra="t", ratings=_ratings(), n_boot=100)
    html = write_report(report, tmp_path / "r.html").read_text()
    assert "no measured bitrate for these codecs" in html
    assert r"\bottomrule" in write_report(report, tmp_path / "r.tex").read_text()
    paths = write_figures(report, tmp_path / "figures")
    assert {p.suffix for p in paths} == {".pdf", ".svg"} and len(paths) >= 8
    for path in paths:
        head = path.read_bytes()[:5]
        assert head == b"%PDF-" if path.suffix == ".pdf" else head in (b"<?xml", b"<svg ")
    with pytest.raises(Exception, match="--force"):
        write_figures(report, tmp_path / "figures")


def test_html_hints_are_screen_only(run_db):
    html = render_html(build_report(run_db, RUN, n_boot=50))
    assert '<p class="hint screen-only">Click a column header to sort a table.</p>' in html
    assert "nav.toc, .screen-only { display:none; }" in html
    lead = html.split('<p class="lead">')[1].split("</p>")[0]
    assert "Click" not in lead


@pytest.mark.slow
def test_pdf_has_no_screen_only_hints_and_shows_n(run_db, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Debian chromium is not installed")
    from pypdf import PdfReader

    report = build_report(run_db, RUN, mushra="t", ratings=_ratings(), n_boot=100)
    text = " ".join(page.extract_text() for page in PdfReader(write_report(report, tmp_path / "r.pdf")).pages)
    assert "Click" not in text and "n = 8" in text and "PESQ-WB" in text
    assert "Left out: reference" in text


def test_an_imported_test_meets_the_run_through_its_map(run_db, tmp_path):
    """Conditions and items named otherwise in the ratings file join the run's codecs and items via --map."""
    from evalkit.mushra.ratings import import_ratings

    ratings = _ratings()
    letters = {codec: f"sys-{k}" for k, codec in enumerate(CODECS)}
    frame = ratings.assign(
        condition=ratings["condition"].map(letters),
        item="page-" + ratings["item"].str[1:],
        listener=ratings["participant"],
    ).drop(columns="participant")
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    data = {
        "test": "imported",
        "reference": "sys-0",
        "screening": "reference",
        "conditions": {letter: {"card": codec} for codec, letter in letters.items() if codec != "reference"},
        "items": {f"page-{k}": f"i{k}" for k in range(8)},
    }
    (tmp_path / "map.yaml").write_text(str(data).replace("'", '"'))
    import_ratings(run_db, tmp_path / "ratings.csv", "long", map_path=tmp_path / "map.yaml")
    report = build_report(run_db, RUN, mushra="imported", n_boot=100)
    assert report.mushra_message is None and set(report.stimuli["condition"]) == set(CODECS) - {"reference"}
    direct = build_report(run_db, RUN, mushra="t", ratings=ratings, n_boot=100)
    key = ["metric", "level", "method"]
    pd.testing.assert_frame_equal(
        report.agreement.set_index(key)[["r", "ci_low", "ci_high"]],
        direct.agreement.set_index(key)[["r", "ci_low", "ci_high"]],
    )
    html = render_html(report)
    assert "ratings imported from long export ratings.csv" in html and "hidden-reference rule only" in html
