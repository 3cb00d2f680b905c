"""evalkit.report: leaderboard numbers against the database, every section's plot or 'missing' message,
exports, metric-listener agreement on generated data, and (slow) the report in headless Chromium."""

from __future__ import annotations

import math
import re
import shutil
import sqlite3
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import take_mushra_test
from sqlalchemy import text

import evalkit
from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.report import (
    ReportOptions,
    agreement_table,
    bootstrap_ci,
    build_report,
    codec_meta,
    correlate,
    item_view,
    leaderboard,
    load_run,
    pareto_front,
    render_html,
    snippet,
    write_report,
)
from evalkit.report.data import resolve_path
from evalkit.report.display import fmt
from evalkit.report.drilldown import event_snippets, load_audio
from evalkit.report.export import latex_table, leaderboard_export
from evalkit.report.names import metric_ranges
from evalkit.report.pareto import NO_PROFILES
from evalkit.report.weighted import row_correlations
from evalkit.store import connect, summary

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "data" / "demo" / "manifest.jsonl"
RUN = "report-test"
CODECS = ["reference", "g711-mulaw", {"card": "opus-16k-wb", "sweep": {"bitrate": [8000, 16000]}}]
SECTIONS_WITH_DATA = ("leaderboard", "rate-quality", "latency", "complexity")


@pytest.fixture(scope="session")
def scored(tmp_path_factory) -> str:
    """A small scored run (3 items x 4 codec configurations x si_sdr, stoi) in a tmp SQLite database."""
    root = tmp_path_factory.getbasetemp() / "evalkit-report"  # shared with test_app.py: the rerun is a no-op
    url = f"sqlite:///{root / 'results.db'}"
    evalkit.run(
        {
            "name": RUN,
            "dataset": str(MANIFEST),
            "limit": 3,
            "codecs": CODECS,
            "metrics": ["si_sdr", "stoi"],
            "workers": 0,
            "database": url,
            "cache": str(root / "cache"),
        }
    )
    return url


@pytest.fixture(scope="session")
def report(scored):
    return build_report(connect(scored), RUN, n_boot=300)


@pytest.fixture(scope="session")
def html(report) -> str:
    return render_html(report)


class _Page(HTMLParser):
    """Tables (by id: rows of (attrs, text) cells), and per section its figures and 'missing' messages."""

    def __init__(self, source: str):
        super().__init__()
        self.tables: dict[str, list[list[tuple[dict, str]]]] = {}
        self.headers: dict[str, list[str]] = {}
        self.sections: dict[str, dict[str, int]] = {}
        self._table = self._section = None
        self._cell: tuple[dict, list[str]] | None = None
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
            self.sections[self._section] = {"figures": 0, "missing": 0}
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table], self.headers[self._table] = [], []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = (attrs, [])
        elif tag == "img" and self._section and attrs.get("src", "").startswith("data:image/svg+xml;base64,"):
            self.sections[self._section]["figures"] += 1
        elif tag == "div" and "missing" in (attrs.get("class") or "").split() and self._section:
            self.sections[self._section]["missing"] += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            attrs, parts = self._cell
            (self.headers[self._table] if tag == "th" else self.tables[self._table][-1]).append(
                (attrs, "".join(parts).strip())
            )
            self._cell = None
        elif tag == "table":
            self.tables[self._table] = [row for row in self.tables[self._table] if row]
            self._table = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)


def _ratings(results: pd.DataFrame, listeners: int = 6, seed: int = 0) -> pd.DataFrame:
    """MUSHRA-like ratings that follow stoi (plus listener bias and noise): a known positive relation."""
    rng = np.random.default_rng(seed)
    stoi = results[results["metric"] == "stoi"].set_index(["item_id", "codec"])["value"]
    rows = []
    for listener in range(listeners):
        bias = rng.normal(0, 3)
        for (item, codec), value in stoi.items():
            score = 100.0 if codec == "reference" else 400 * (value - 0.8)
            rows.append(
                {
                    "participant": f"L{listener}",
                    "item": item,
                    "condition": codec,
                    "score": float(np.clip(score + bias + rng.normal(0, 4), 0, 100)),
                }
            )
    return pd.DataFrame(rows)


# -- leaderboard and the database -----------------------------------------------------------------


def test_leaderboard_equals_stored_summary(scored):
    engine = connect(scored)
    board = leaderboard(load_run(engine, RUN))
    stored = summary(engine, RUN, bounds=metric_ranges())
    merged = board.merge(stored, on=["codec", "codec_hash", "metric", "metric_version"], suffixes=("", "_db"))
    assert len(merged) == len(board) == 4 * 2
    for column in ("mean", "std", "ci_low", "ci_high", "n_ok"):
        assert merged[column].tolist() == merged[f"{column}_db"].tolist(), column


def test_pesq_ranges_hold_the_identity_score():
    # A clean copy scores the top of each MOS-LQO mapping (P.862.2: 4.644); a range below it
    # clipped the identity's interval under its own mean.
    from evalkit.audio import load
    from evalkit.metrics.perceptual import pesq_nb, pesq_wb

    clip = load(MANIFEST.parent / "audio" / "arctic-awb-a0007.wav")
    assert clip.sample_rate == 16000
    samples = clip.samples[0]
    ranges = metric_ranges()
    assert ranges["pesq_wb"][0] <= pesq_wb(samples, samples, 16000) <= ranges["pesq_wb"][1]
    assert ranges["pesq_nb"][0] <= pesq_nb(samples, samples, 16000) <= ranges["pesq_nb"][1]


def test_html_leaderboard_numbers_equal_database_query(scored, html):
    page = _Page(html)
    headers = [attrs["data-key"] for attrs, _ in page.headers["leaderboard"]]
    with connect(scored).connect() as connection:
        query = text("SELECT codec, metric, value FROM results WHERE run_id = :run AND status = 'ok'")
        rows = connection.execute(query, {"run": RUN}).all()
    means = pd.DataFrame(rows, columns=["codec", "metric", "value"]).groupby(["codec", "metric"])["value"].mean()
    checked = 0
    for row in page.tables["leaderboard"]:
        codec = row[0][0]["data-key"]
        for (attrs, cell), metric in zip(row, headers):
            if (codec, metric) in means and metric in ("si_sdr", "stoi"):
                assert float(attrs["data-value"]) == pytest.approx(means[(codec, metric)], rel=1e-12, abs=1e-12)
                assert cell.startswith(fmt(float(attrs["data-value"])))
                checked += 1
    assert checked == 8


def test_speaker_filter_keeps_that_speakers_items(scored):
    run = load_run(connect(scored), RUN)
    items = run.results["item_id"].unique()
    speaker = run.speakers[items[0]]
    expected = sum(run.speakers[item] == speaker for item in items)
    board = leaderboard(run, speakers=[speaker], metrics=["stoi"])
    assert set(board["n_ok"]) == {expected} and set(board["metric"]) == {"stoi"}
    assert leaderboard(run, datasets=["no-such-dataset"]).empty


def test_sweep_codec_gets_its_family_and_bitrate():
    meta = codec_meta("opus-16k-wb@bitrate=8000")
    assert (meta.family, meta.nominal_kbps) == ("opus", 8.0) and meta.latency_ms > 0
    assert codec_meta("no-such-card").family == "unknown"


def test_relative_dataset_paths_resolve_against_experiments_folder():
    assert resolve_path("../data/demo/manifest.jsonl") == MANIFEST
    assert resolve_path("no/such/file.jsonl") is None


# -- sections ----------------------------------------------------------------------------------------


def test_each_section_has_its_plot_or_says_what_is_missing(html):
    page = _Page(html)
    for section in SECTIONS_WITH_DATA:
        assert page.sections[section]["figures"] >= 1, section
    for section in ("content", "listening", "agreement"):
        assert page.sections[section]["missing"] == 1 and page.sections[section]["figures"] == 0, section
    assert page.sections["complexity"]["missing"] == 1  # no profiles yet: says so, shows the run's timings
    assert "evalkit profile --all" in html and "phoneme" in html and "MUSHRA" in html


def test_report_is_self_contained(html):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert '<link rel="stylesheet"' not in html and "@import" not in html
    assert html.count("data:image/svg+xml;base64,") >= len(SECTIONS_WITH_DATA)


def test_methods_list_packages_rates_and_tests(html):
    page = _Page(html)
    packages = {row[0][1]: row[1][1] for row in page.tables["packages"]}
    assert packages["pystoi"] == "0.4.1" and "soxr" in packages and "evalkit" in packages
    assert {row[0][1] for row in page.tables["rates"]} == {"si_sdr", "stoi"}
    assert "Kendall" in html and "bootstrap" in html and "Screening" in html


def test_listening_sections_with_generated_ratings(scored):
    engine = connect(scored)
    ratings = _ratings(load_run(engine, RUN).results)
    report = build_report(engine, RUN, mushra="generated", ratings=ratings, n_boot=300)
    page = _Page(render_html(report))
    assert page.sections["listening"]["figures"] == 1 and page.sections["agreement"]["figures"] == 1
    stimulus = report.agreement[(report.agreement["level"] == "stimulus") & (report.agreement["metric"] == "stoi")]
    assert (stimulus["r"] > 0.8).all()
    table = {row[0][0]["data-key"]: row for row in page.tables["agreement-stimulus"]}
    pearson = stimulus[stimulus["method"] == "pearson"]["r"].item()
    assert float(table["stoi"][3][0]["data-value"]) == pearson  # metric, n, items, pearson


def test_a_run_without_results_renders_with_a_message_in_every_section(tmp_path):
    from evalkit.store import ensure_run

    engine = connect(f"sqlite:///{tmp_path / 'empty.db'}")
    ensure_run(engine, "empty", {"name": "empty", "dataset": "nowhere.jsonl", "metrics": ["pesq_wb"]}, "0")
    page = _Page(render_html(build_report(engine, "empty")))
    assert all(page.sections[s]["missing"] >= 1 for s in page.sections if s != "methods")
    assert r"\bottomrule" in latex_table(build_report(engine, "empty"))


def test_the_command_line_refuses_a_listening_test_that_is_not_there(scored, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--run", RUN, "--mushra", "no-such-test", "-o", str(out), "--database", scored]) == 1
    err = capsys.readouterr().err
    assert "--mushra no-such-test: no listening test of that name" in err and not out.exists()


def test_missing_listening_test_is_a_message_not_an_error(scored):
    report = build_report(connect(scored), RUN, mushra="no-such-test")
    assert report.agreement is None and report.mushra_message
    assert "no-such-test" in report.mushra_message or "MUSHRA" in report.mushra_message


def test_drilldown_finds_reference_and_decoded_audio(scored):
    engine = connect(scored)
    run = load_run(engine, RUN)
    item = run.results["item_id"].iloc[0]
    view = item_view(engine, run, item, "g711-mulaw")
    reference, decoded = load_audio(view.reference_path), load_audio(view.decoded_path)
    assert reference is not None and decoded is not None and not view.notes
    assert decoded.frames == reference.frames
    assert set(view.metrics["metric"]) >= {"si_sdr", "stoi"}
    assert view.events is None or view.events.empty  # no hallucination events (or no content_events table yet)
    assert snippet(reference, 0.5, 0.7, pad=0.1).frames == int(0.4 * reference.sample_rate)


def test_complexity_without_profiles_says_so(report):
    assert report.complexity_note == NO_PROFILES
    assert report.complexity["complexity_rtf"].notna().all()


def _copy(url: str, path: Path):
    """An engine on a copy of the database at `url` (WAL included), for tests that add rows."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    return connect(f"sqlite:///{path}")


def test_complexity_comes_from_a_stored_profile(scored, tmp_path):
    """A `profiles` row (any other columns filled with placeholders) is joined on codec and config hash."""
    from sqlalchemy import Boolean, Float, Integer, String, insert, inspect

    from evalkit.report import complexity_table
    from evalkit.store.models import utcnow

    engine = _copy(scored, tmp_path / "profiles.db")
    table = next(t for t in evalkit.store.Base.metadata.sorted_tables if t.name == "profiles")
    if not inspect(engine).has_table("profiles"):
        pytest.skip("no profiles table in this schema yet")
    run = load_run(engine, RUN)
    codec_hash = run.results.loc[run.results["codec"] == "g711-mulaw", "codec_hash"].iloc[0]
    placeholder = {Float: 0.0, Integer: 0, String: "x", Boolean: False}
    row = {
        c.name: next((v for t, v in placeholder.items() if isinstance(c.type, t)), None)
        for c in table.columns
        if not c.nullable and not c.primary_key
    }
    row.update(codec="g711-mulaw", codec_hash=codec_hash, encode_rtf=0.01, decode_rtf=0.002, created_at=utcnow())
    with engine.begin() as connection:
        connection.execute(insert(table).values(**{k: v for k, v in row.items() if k in table.c}))
    complexity, note = complexity_table(engine, run)
    g711 = complexity.set_index("codec").loc["g711-mulaw"]
    assert g711["complexity_rtf"] == pytest.approx(0.012) and g711["complexity_source"] == "profile"
    assert note.startswith("3 codec(s) not profiled")


def test_phoneme_results_and_hallucination_events_are_shown(scored, tmp_path):
    """Rows of the phoneme metric fill the content section; events (any spelling of start/end) the drill-down."""
    from sqlalchemy import inspect

    from evalkit.store import write_results

    engine = _copy(scored, tmp_path / "content.db")
    run = load_run(engine, RUN)
    keys = run.results[run.results["metric"] == "stoi"][["run_id", "item_id", "codec", "codec_hash", "dataset"]]
    rows = [
        {**key, "metric": metric, "metric_version": "test", "status": "ok", "value": value}
        for key in keys.to_dict("records")
        for metric, value in (("per", 0.1), ("hallucinations_per_min", 2.0))
    ]
    write_results(engine, rows)
    if not inspect(engine).has_table("content_events"):  # until the content migration lands: its likely shape
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE content_events (id INTEGER PRIMARY KEY, run_id TEXT, item_id TEXT, "
                    "codec TEXT, start_s REAL, end_s REAL, ref_phones TEXT, deg_phones TEXT)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO content_events (run_id, item_id, codec, start_s, end_s, ref_phones, "
                    "deg_phones) VALUES (:run, :item, 'g711-mulaw', 0.5, 0.6, 'S ER V', 'S ER F')"
                ),
                {"run": RUN, "item": keys["item_id"].iloc[0]},
            )
    report = build_report(engine, RUN)
    page = _Page(render_html(report))
    assert page.sections["content"]["figures"] == 2 and page.sections["content"]["missing"] == 0
    view = item_view(engine, load_run(engine, RUN), keys["item_id"].iloc[0], "g711-mulaw")
    if not view.events.empty:  # the row inserted above (a landed content migration starts empty)
        assert list(view.events[["start", "end"]].iloc[0]) == [0.5, 0.6]
        reference = load_audio(view.reference_path)
        ((label, clip, decoded),) = event_snippets(view.events, reference, load_audio(view.decoded_path), pad=0.1)
        assert "S ER V → S ER F" in label and clip.frames == decoded.frames == round(0.3 * reference.sample_rate)


# -- exports -----------------------------------------------------------------------------------------


def test_csv_and_parquet_exports_equal_the_leaderboard(report, tmp_path):
    expected = leaderboard_export(report)
    csv = pd.read_csv(write_report(report, tmp_path / "board.csv"))
    parquet = pd.read_parquet(write_report(report, tmp_path / "board.parquet"))
    for frame in (csv, parquet):
        assert frame["mean"].tolist() == pytest.approx(expected["mean"].tolist(), rel=1e-12)
        assert list(frame.columns) == list(expected.columns)


def test_latex_table_is_booktabs_and_ready_to_paste(report):
    latex = latex_table(report)
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrr}", r"\caption{", r"\label{"):
        assert command in latex
    rows = [line for line in latex.splitlines() if line.rstrip().endswith(r"\\")]
    assert len(rows) == 1 + 4  # header + every codec configuration (the reference below a rule)
    assert {row.count("&") for row in rows} == {4}
    assert r"SI-SDR (dB) $\uparrow$" in latex and r"\textbf{" in latex and r"\textit{reference}" in latex
    assert "opus-16k-wb (16 kbit/s)" in latex  # display names: a sweep variant shows its bitrate


def test_cli_writes_each_format_and_never_overwrites_without_force(scored, tmp_path, capsys):
    for name in ("r.html", "r.tex", "r.csv"):
        assert main(["report", "--run", RUN, "--database", scored, "-o", str(tmp_path / name)]) == 0
    before = (tmp_path / "r.tex").read_text()
    assert main(["report", "--run", RUN, "--database", scored, "-o", str(tmp_path / "r.tex")]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["report", "--run", RUN, "--database", scored, "-o", str(tmp_path / "r.tex"), "--force"]) == 0
    assert (tmp_path / "r.tex").read_text() == before
    assert main(["report", "--run", "nope", "--database", scored, "-o", str(tmp_path / "x.html")]) == 1
    assert main(["report", "--run", RUN, "--database", scored, "-o", str(tmp_path / "x.doc")]) == 1
    assert not (tmp_path / "x.html").exists()


# -- agreement statistics on generated data ---------------------------------------------------------


@pytest.mark.parametrize("rho", [0.3, 0.8])
def test_correlations_recover_a_known_bivariate_normal(rho):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(1000)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(1000)
    expected = {"pearson": rho, "spearman": 6 / math.pi * math.asin(rho / 2), "kendall": 2 / math.pi * math.asin(rho)}
    for method, value in expected.items():
        r, p = correlate(x, y, method)
        low, high = bootstrap_ci(x, y, method, n_boot=300, seed=1)
        assert r == pytest.approx(value, abs=0.05) and p < 1e-6
        assert low <= value <= high and high - low < 0.15


def test_bootstrap_is_seeded_and_handles_degenerate_input():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(30), rng.standard_normal(30)
    assert bootstrap_ci(x, y, "spearman", seed=3) == bootstrap_ci(x, y, "spearman", seed=3)
    assert bootstrap_ci(x, y, "spearman", seed=3) != bootstrap_ci(x, y, "spearman", seed=4)
    assert all(math.isnan(v) for v in correlate(np.ones(5), np.arange(5), "pearson"))
    assert all(math.isnan(v) for v in bootstrap_ci([1.0, 2.0], [2.0, 1.0], "kendall"))


def test_vectorised_kendall_equals_scipy_with_ties():
    from scipy import stats

    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(40, 25)).astype(float)
    y = x + rng.integers(0, 3, size=(40, 25))
    expected = [stats.kendalltau(a, b).statistic for a, b in zip(x, y)]
    assert row_correlations(x, y, "kendall") == pytest.approx(expected, abs=1e-12)


def test_system_level_averages_items_before_correlating():
    # Condition means follow the metric exactly; item noise (zero mean per condition) only shows per stimulus.
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 0.8, size=(8, 12))
    noise -= noise.mean(axis=1, keepdims=True)
    frame = pd.DataFrame(
        [
            {
                "metric": "m",
                "condition": f"c{c}",
                "item": f"i{i}",
                "value": c + noise[c, i],
                "score": 10 * c + rng.normal(0, 1),
            }
            for c in range(8)
            for i in range(12)
        ]
    )
    table = agreement_table(frame, n_boot=200).set_index(["level", "method"])["r"]
    assert table[("system", "spearman")] == pytest.approx(1.0)
    assert table[("system", "kendall")] == pytest.approx(1.0)
    assert table[("stimulus", "pearson")] < table[("system", "pearson")]


def test_pareto_front_on_a_hand_made_example():
    cost = np.array([1.0, 2.0, 3.0, 2.5, np.nan])
    quality = np.array([1.0, 3.0, 4.0, 2.0, 9.0])
    assert pareto_front(cost, quality).tolist() == [True, True, True, False, False]
    assert pareto_front(cost, -quality, higher_better=False).tolist() == [True, True, True, False, False]


@pytest.mark.slow
def test_real_mushra_ratings_merge_with_the_run(scored, tmp_path):
    """A MUSHRA test made and rated through evalkit.mushra on the run's items: scores meet metric values."""
    mushra = pytest.importorskip("evalkit.mushra")
    from evalkit.datasets import load_dataset
    from evalkit.mushra.spec import spec_from_dict

    engine = _copy(scored, tmp_path / "mushra.db")  # the shared database stays without a MUSHRA test
    items = [item.id for item in load_dataset(MANIFEST)[:3]]
    spec = spec_from_dict(
        {
            "name": "merge",
            "title": "merge",
            "manifest": str(MANIFEST),
            "items": items,
            "conditions": ["g711-mulaw"],
            "sample_rate": 16000,
            "randomization": {"seed": 1},
            "open_link": True,
        },
        base=ROOT,
        source="merge.yaml",
    )
    mushra.create_test(engine, spec, stimulus_root=tmp_path / "stimuli", cache_root=tmp_path / "cache")
    info = mushra.launch_test(engine, "merge")
    for _ in range(3):  # listeners rate everything 90-98: all kept (the anchor rule skips such items)
        take_mushra_test(engine, info.open_token, lambda k: 90.0 + 2 * k)
    report = build_report(engine, RUN, mushra="merge", n_boot=100)
    ratings = mushra.ratings_frame(engine, "merge")
    assert report.mushra_message is None and not report.listening.excluded
    stimuli = report.stimuli[report.stimuli["metric"] == "stoi"]
    assert set(stimuli["condition"]) == {"g711-mulaw"} and len(stimuli) == 3  # the hidden reference left out
    expected = ratings.groupby(["item", "condition"])["score"].mean()
    assert (
        stimuli.set_index(["item", "condition"])["score"].to_dict()
        == expected.loc[list(stimuli.set_index(["item", "condition"]).index)].to_dict()
    )
    assert set(report.agreement["level"]) == {"system", "stimulus"}
    everything = build_report(engine, RUN, mushra="merge", n_boot=100, options=ReportOptions(include_reference=True))
    assert set(everything.stimuli["condition"]) == {"reference", "g711-mulaw"}


# -- in a real browser (slow) ------------------------------------------------------------------------


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return path


@pytest.mark.slow
def test_report_renders_in_headless_chromium(html, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from evalkit.report.export import CHROMIUM_FLAGS

    path = tmp_path / "report.html"
    path.write_text(html)
    problems, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS[1:])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        started = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load")
        seconds = time.perf_counter() - started
        loaded = page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        page.click("#leaderboard th:nth-child(5)")  # the sort script runs without errors
        page.screenshot(path=tmp_path / "report.png", full_page=False)
        browser.close()
    assert problems == [] and loaded and seconds < 10
    assert all(url.startswith(("file:", "data:")) for url in requests)
    pixels = np.asarray(Image.open(tmp_path / "report.png").convert("L"), dtype=float)
    assert pixels.std() > 20  # not blank: header band, table and text


@pytest.mark.slow
def test_pdf_export_prints_with_chromium(report, tmp_path):
    _chromium()
    pdf = write_report(report, tmp_path / "report.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF" and pdf.stat().st_size > 20_000
    with pytest.raises(EvalkitError, match="--force"):
        write_report(report, pdf)


def test_cost_figure_draws_a_metric_with_no_scored_row(tmp_path):
    """A metric every row of which was skipped (wer without text) has no mean: its log-axis panel says so."""
    from evalkit.report.figures import cost_figure, svg_data_uri
    from evalkit.report.pareto import mark_front

    points = pd.DataFrame(
        {
            "codec": ["a", "b", "a", "b"],
            "family": ["x", "y", "x", "y"],
            "metric": ["si_sdr", "si_sdr", "wer", "wer"],
            "mean": [3.0, 5.0, np.nan, np.nan],
            "complexity_rtf": [0.01, 0.02, 0.01, 0.02],
        }
    )
    figure = cost_figure(mark_front(points, "complexity_rtf"), "complexity_rtf", "RTF", ["si_sdr", "wer"], log_x=True)
    assert svg_data_uri(figure).startswith("data:image/svg+xml")
    assert "no scored rows" in [text.get_text() for text in figure.axes[1].texts]


def test_a_codec_missing_some_items_is_named_by_results_and_the_report(scored, tmp_path, capsys):
    """A run stopped part way leaves one codec without rows for some items: its means cover other items."""
    from evalkit.report.leaderboard import coverage_gaps, current_results

    assert coverage_gaps(current_results(load_run(connect(scored), RUN).results)) == []
    engine = _copy(scored, tmp_path / "stopped.db")
    item = load_run(engine, RUN).results["item_id"].iloc[0]
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM results WHERE run_id = :run AND codec = 'g711-mulaw' AND item_id = :item"),
            {"run": RUN, "item": item},
        )
    assert main(["results", "--run", RUN, "--database", str(engine.url)]) == 0
    expected = f"g711-mulaw has no row for 1 of the run's 3 items ({item})"
    assert f"warning: {expected}" in capsys.readouterr().err
    assert expected.replace("'", "&#39;") in render_html(build_report(engine, RUN, n_boot=50))


def test_a_card_from_the_runs_own_card_folder_keeps_its_family_and_latency(tmp_path):
    """The experiment's `cards:` folder is where the report finds the run's own cards (not only $EVALKIT_CARDS)."""
    (tmp_path / "mycards").mkdir()
    (tmp_path / "mycards" / "my-alaw.yaml").write_text("name: my-alaw\nbackend: g711\nparams: {law: a}\n")
    (tmp_path / "exp.yaml").write_text(
        f"name: own\ndataset: {MANIFEST}\nlimit: 1\ncodecs: [my-alaw]\ncards: [mycards]\nmetrics: [si_sdr]\n"
        f"workers: 0\nallow_outside: true\ndatabase: sqlite:///{tmp_path / 'db.sqlite'}\ncache: cache\n"
    )
    evalkit.run(str(tmp_path / "exp.yaml"))
    report = build_report(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), "own", n_boot=50)
    codec = report.codecs.set_index("codec").loc["my-alaw"]
    assert codec["family"] == "g711" and codec["latency_ms"] == pytest.approx(20.0)
    assert set(report.board["family"]) == {"g711"}


def test_a_latex_label_is_ascii_whatever_the_run_is_called():
    from evalkit.report.export import _label

    assert _label("weird <b>run_%&#$ ü") == "weird--b-run-------"


def test_latex_escapes_what_the_default_text_fonts_would_misprint():
    from evalkit.report.export import latex_escape

    assert latex_escape("<b> 50% & $x_1") == r"\textless{}b\textgreater{} 50\% \& \$x\_1"


def test_drilldown_of_a_failed_round_trip_gives_its_reason_not_a_rerun(scored, tmp_path):
    """No decoded audio because the codec failed: rerunning would fail again, so the note says why."""
    engine = _copy(scored, tmp_path / "failed.db")
    item = load_run(engine, RUN).results["item_id"].iloc[0]
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE roundtrips SET status = 'failed', reason = 'codec g711-mulaw failed: boom', cache_key = NULL "
                "WHERE codec = 'g711-mulaw' AND item_id = :item"
            ),
            {"item": item},
        )
    view = item_view(engine, load_run(engine, RUN), item, "g711-mulaw")
    assert view.notes == [f"no decoded audio of {item} through g711-mulaw: it failed (codec g711-mulaw failed: boom)"]


def test_a_report_suffix_it_cannot_read_names_the_ones_it_can(tmp_path, capsys):
    from evalkit.report.export import format_for

    assert [format_for(f"r{suffix}") for suffix in (".html", ".PDF", ".tex")] == ["html", "pdf", "latex"]
    assert main(["report", "--run", "any", "-o", str(tmp_path / "r.latex")]) == 1  # refused before the database
    err = capsys.readouterr().err
    assert "cannot tell the format from .latex; end it in .html, .pdf, .csv, .parquet, .tex, or pass --format" in err
