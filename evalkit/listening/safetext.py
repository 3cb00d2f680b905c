"""Text from a test definition, made safe to show: nothing in it can fetch from elsewhere.

A definition's title, consent, instructions, questions and item names are written by whoever
made the test and shown to listeners and admins. Markdown images (and HTML) would make every
browser fetch from any host. `to_html` renders a small Markdown subset (paragraphs, line
breaks, bullet lists, bold, italic, code) with everything else escaped: an image becomes its
alt text, a link its text. `inert_markdown` prepares text for a Markdown renderer (Streamlit's)
by escaping the characters that open images, links and HTML. `spreadsheet_safe` prefixes the text
cells of a CSV export that a spreadsheet would run as a formula (=HYPERLINK(...), +cmd, @SUM) with `'`.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["to_html", "inert_markdown", "plain_text", "spreadsheet_safe", "FORMULA_START"]

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp|data|mailto):[^>\s]*)>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BULLET = re.compile(r"^[-*+]\s+")
_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"__(.+?)__"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*"), r"<em>\1</em>"),
    (re.compile(r"(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?!\w)"), r"<em>\1</em>"),
]
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_{}\[\]()<>#!|~$])")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def plain_text(text: str) -> str:
    """The words only: images become their alt text, links their text, HTML tags disappear."""
    text = _IMAGE.sub(r"\1", str(text))
    text = _LINK.sub(r"\1", text)
    return _TAG.sub("", _AUTOLINK.sub(r"\1", text))


def to_html(text: str) -> str:
    """Safe HTML for a block of definition text: escaped, with a small Markdown subset."""
    blocks = [block for block in re.split(r"\n\s*\n", plain_text(text).strip()) if block.strip()]
    return "\n".join(_block(block) for block in blocks)


def _block(block: str) -> str:
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    if all(_BULLET.match(line) for line in lines):
        return "<ul>" + "".join(f"<li>{_inline(_BULLET.sub('', line))}</li>" for line in lines) + "</ul>"
    return "<p>" + "<br>".join(_inline(line) for line in lines) + "</p>"


def _inline(line: str) -> str:
    line = html.escape(line, quote=True)
    for pattern, replacement in _INLINE:
        line = pattern.sub(replacement, line)
    return line


def inert_markdown(text: str) -> str:
    """`text` for st.markdown and kin: shown literally, so no image, link or HTML can act."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", str(text))


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` for a CSV file: text that a spreadsheet would run as a formula starts with ' (shown, not run).

    Names, comments and answers come from listeners and imported files; opened in a spreadsheet, a cell
    like =HYPERLINK("http://...") would act. Numbers written as text (-3, +1.5) are left as they are."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    safe = frame.copy()
    for position, dtype in enumerate(safe.dtypes):
        if is_object_dtype(dtype) or is_string_dtype(dtype):
            safe.isetitem(position, safe.iloc[:, position].map(_spreadsheet_cell))
    return safe


def _spreadsheet_cell(value):
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value
