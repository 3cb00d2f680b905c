"""Render ReportData to one self-contained HTML page with the packaged Jinja2 template."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from .build import ReportData
from .methods import STATISTICS, methods_section, overview
from .sections import Section, build_sections

__all__ = ["render_html", "report_sections", "TEMPLATES"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
_CODE = re.compile(r"`([^`]+)`")


def report_sections(report: ReportData) -> list[Section]:
    """The analysis sections followed by the methods."""
    return build_sections(report) + [methods_section(report)]


def render_html(report: ReportData, title: str | None = None) -> str:
    """The report as an HTML string: inline CSS and JS, figures as data URIs, no external resource."""
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=title or f"Run {report.run.run_id}",
            run_id=report.run.run_id,
            version=report.evalkit_version,
            generated=f"{report.generated_at:%Y-%m-%d %H:%M} UTC",
            database=report.database,
            facts=overview(report),
            sections=report_sections(report),
            statistics=STATISTICS,
        )
    )


def _codespans(text: str) -> Markup:
    """Escape, then show `command` spans as <code> (messages name the command that fixes them)."""
    return Markup(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=False,
        lstrip_blocks=False,
    )
    environment.filters["codespans"] = _codespans
    return environment
