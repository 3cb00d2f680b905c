"""Write a report: HTML (self-contained), PDF (headless Chromium prints the HTML), a booktabs LaTeX
table, or the leaderboard as CSV/Parquet; and each figure alone as PDF and SVG. Nothing is
overwritten without `force`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import EvalkitError
from ..store import export as export_frame
from .build import ReportData
from .codecinfo import REFERENCE_FAMILIES, higher_is_better
from .display import fmt
from .figures import FIGURE_FORMATS, save_figure
from .html import render_html
from .leaderboard import SMALL_N

__all__ = [
    "FORMATS",
    "write_report",
    "write_figures",
    "leaderboard_export",
    "latex_table",
    "latex_escape",
    "html_to_pdf",
    "find_chromium",
    "format_for",
]

FORMATS = {"html": ".html", "pdf": ".pdf", "csv": ".csv", "parquet": ".parquet", "latex": ".tex"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",  # the default OT1 text fonts print < and > as inverted ! and ?
    ">": r"\textgreater{}",
}


def format_for(path: str | Path, fmt_name: str | None = None) -> str:
    """The output format: `fmt_name` if given, else from the file suffix (.html, .pdf, .csv, .parquet, .tex)."""
    if fmt_name:
        if fmt_name not in FORMATS:
            raise EvalkitError(f"unknown report format {fmt_name!r}; choose one of {', '.join(FORMATS)}")
        return fmt_name
    suffix = Path(path).suffix.lower()
    found = next((name for name, ext in FORMATS.items() if ext == suffix), None)
    if found is None:
        suffixes = ", ".join(FORMATS.values())
        raise EvalkitError(
            f"{path}: cannot tell the format from {suffix or 'no suffix'}; end it in {suffixes}, or pass --format"
        )
    return found


def write_report(report: ReportData, path: str | Path, fmt_name: str | None = None, force: bool = False) -> Path:
    """Write `report` to `path` in the chosen format; refuses an existing file unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise EvalkitError(f"{path} exists; pass --force to overwrite it")
    fmt_name = format_for(path, fmt_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt_name in ("csv", "parquet"):
        return _replace(path, lambda tmp: export_frame(leaderboard_export(report), tmp))
    if fmt_name == "latex":
        return _replace(path, lambda tmp: tmp.write_text(latex_table(report), encoding="utf-8"))
    html = render_html(report)
    if fmt_name == "pdf":
        return _replace(path, lambda tmp: html_to_pdf(html, tmp))
    return _replace(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))


def write_figures(
    report: ReportData, directory: str | Path, formats: tuple[str, ...] = FIGURE_FORMATS, force: bool = False
) -> list[Path]:
    """Each figure of the report alone, as `<directory>/<figure id>.<format>`; refuses existing files unless `force`."""
    from .html import report_sections

    directory = Path(directory)
    figures = [figure for section in report_sections(report) for figure in section.figures if figure.figure]
    paths = [directory / f"{figure.id}.{fmt_name}" for figure in figures for fmt_name in formats]
    if existing := [p for p in paths if p.exists()] if not force else []:
        raise EvalkitError(f"{existing[0]} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    for figure in figures:
        for fmt_name in formats:
            _replace(directory / f"{figure.id}.{fmt_name}", lambda tmp, f=figure.figure: save_figure(f, tmp))
    return paths


def leaderboard_export(report: ReportData) -> pd.DataFrame:
    """The leaderboard in long form with each codec's family, measured kbps, latency and display names."""
    codecs = report.codecs.drop(columns=["family"])
    frame = report.board.merge(codecs, on="codec", how="left")
    frame = frame.assign(
        codec_name=frame["codec"].map(report.names.codec), metric_name=frame["metric"].map(report.names.metric)
    )
    return frame.assign(run_id=report.run.run_id)[["run_id"] + [c for c in frame.columns]]


def latex_table(report: ReportData, metrics: list[str] | None = None) -> str:
    """A booktabs table ready to paste: codecs best first, mean ± CI half-width, best per metric bold."""
    metrics = [m for m in (metrics or report.metrics) if m in set(report.board["metric"])]
    means = report.board.pivot_table(index="codec", columns="metric", values="mean", aggfunc="first")
    halves = report.board.assign(half=(report.board["ci_high"] - report.board["ci_low"]) / 2).pivot_table(
        index="codec", columns="metric", values="half", aggfunc="first"
    )
    info = report.codecs.set_index("codec")
    conditions = [c for c in info.index if info.loc[c, "family"] in REFERENCE_FAMILIES]
    contenders = [c for c in info.index if c not in conditions]
    order = _ranked(means, metrics[0], contenders) if metrics else contenders
    best = {m: _ranked(means, m, contenders)[0] for m in metrics if m in means and contenders}
    small = report.board.assign(small=report.board["n_ok"] < SMALL_N).pivot_table(
        index="codec", columns="metric", values="small", aggfunc="first"
    )
    table = _LatexTable(report, info, means, halves, small, metrics)
    lines = _latex_head(report, metrics)
    lines += [table.row(c, best) for c in order]
    if conditions and metrics:  # the hidden reference and anchors, below the codecs
        lines.append(r"    \midrule")
        lines += [table.row(c, {}, italic=True) for c in _ranked(means, metrics[0], conditions)]
    return "\n".join(lines + [r"    \bottomrule", r"  \end{tabular}", r"\end{table}", ""])


def _ranked(means: pd.DataFrame, metric: str, codecs: list[str]) -> list[str]:
    column = means[metric].reindex(codecs) if metric in means else pd.Series(index=codecs, dtype=float)
    return list(column.sort_values(ascending=not higher_is_better(metric), na_position="last").index)


def _latex_head(report: ReportData, metrics: list[str]) -> list[str]:
    run = latex_escape(report.run.run_id)
    items = report.run.results["item_id"].nunique()
    arrows = [
        latex_escape(report.names.metric(m)) + (r" $\uparrow$" if higher_is_better(m) else r" $\downarrow$")
        for m in metrics
    ]
    return [
        f"% evalkit {report.evalkit_version}: leaderboard of run {report.run.run_id}; needs \\usepackage{{booktabs}}",
        r"\begin{table}[t]",
        r"  \centering",
        r"  \small",
        f"  \\caption{{Objective quality of run \\texttt{{{run}}}: mean over {items} items $\\pm$ half-width of the "
        r"95\,\% confidence interval; kbit/s measured from the bitstream (duration-weighted). Best codec per metric "
        f"in bold; test conditions in italics; $^\\dagger$ fewer than {SMALL_N} items.}}",
        f"  \\label{{tab:evalkit-{_label(report.run.run_id)}}}",
        "  \\begin{tabular}{l" + "r" * (2 + len(metrics)) + "}",
        r"    \toprule",
        "    " + " & ".join(["Codec", "kbit/s", "Latency (ms)"] + arrows) + r" \\",
        r"    \midrule",
    ]


class _LatexTable:
    """The numbers of a LaTeX leaderboard, and how one codec's row is written."""

    def __init__(
        self,
        report: ReportData,
        info: pd.DataFrame,
        means: pd.DataFrame,
        halves: pd.DataFrame,
        small: pd.DataFrame,
        metrics: list[str],
    ):
        self.report, self.info, self.means, self.halves, self.small, self.metrics = (
            report,
            info,
            means,
            halves,
            small,
            metrics,
        )

    def row(self, codec: str, best: dict[str, str], italic: bool = False) -> str:
        name = latex_escape(self.report.names.codec(codec))
        cells = [
            f"\\textit{{{name}}}" if italic else name,
            _tex_number(self.info.loc[codec, "measured_kbps"]),
            _tex_number(self.info.loc[codec, "latency_ms"]),
        ]
        cells += [self._cell(codec, metric, best) for metric in self.metrics]
        return "    " + " & ".join(cells) + r" \\"

    def _cell(self, codec: str, metric: str, best: dict[str, str]) -> str:
        mean, half, small = (self._at(table, codec, metric) for table in (self.means, self.halves, self.small))
        value = _tex_number(mean)
        value = f"\\textbf{{{value}}}" if best.get(metric) == codec else value
        value += f" {{\\scriptsize$\\pm${fmt(half)}}}" if half is not None and pd.notna(half) else ""
        return value + ("$^\\dagger$" if small is True or small == 1 else "")

    @staticmethod
    def _at(table: pd.DataFrame, codec: str, metric: str):
        return table.at[codec, metric] if metric in table and codec in table.index else None


def _tex_number(value) -> str:
    """A number as fmt writes it, with a typeset minus; '--' when missing."""
    text = fmt(value)
    return "--" if text == "–" else text.replace("-", "$-$", 1)


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def _label(text: str) -> str:
    return "".join(char if char.isascii() and char.isalnum() or char == "-" else "-" for char in text)


def find_chromium() -> str:
    """The Chromium binary: $EVALKIT_CHROMIUM, else chromium / chromium-browser / google-chrome on PATH."""
    for candidate in (os.environ.get("EVALKIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise EvalkitError(
        "PDF export needs a headless Chromium: apt-get install chromium (or set EVALKIT_CHROMIUM to the browser binary)"
    )


def html_to_pdf(html: str, path: Path, timeout: float = 120.0) -> Path:
    """Print `html` to `path` with headless Chromium (A4, backgrounds, no header or footer)."""
    with tempfile.TemporaryDirectory(prefix="evalkit-pdf-") as scratch:
        source = Path(scratch) / "report.html"
        source.write_text(html, encoding="utf-8")
        command = [
            find_chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={Path(scratch) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={Path(path).resolve()}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EvalkitError(f"Chromium did not print {path} within {timeout:.0f} s") from None
    if not Path(path).is_file() or Path(path).read_bytes()[:4] != b"%PDF":
        raise EvalkitError(f"Chromium failed to print {path}: {done.stderr.strip()[-400:]}")
    return Path(path)


def _replace(path: Path, write) -> Path:
    """Write through a temporary file beside `path`, then rename: a failed export leaves no half file."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        written = write(partial)
        os.replace(written if isinstance(written, Path) else partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
