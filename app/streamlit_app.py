"""evalkit's Streamlit app: this entry point lists the pages; each page is a thin script over evalkit.

Run it with `evalkit app` (or `streamlit run app/streamlit_app.py`); the database is
$EVALKIT_DB_URL, else results/evalkit.db under the working directory.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

# The app's pages: (sidebar section, script relative to app/, title, icon). The first is the default
# page, served at "/"; the others at "/<script file name without .py>".
# To add pages (e.g. the MUSHRA listener and admin pages), put the scripts in app/views/ and append
# here, e.g. PAGES.append(("Listening tests", "views/mushra_admin.py", "MUSHRA admin", ":material/tune:")).
PAGES: list[tuple[str, str, str, str]] = [
    ("Results", "views/leaderboard.py", "Leaderboard", ":material/leaderboard:"),
    ("Results", "views/rate_quality.py", "Rate–quality", ":material/show_chart:"),
    ("Results", "views/quality_cost.py", "Quality vs cost", ":material/speed:"),
    ("Results", "views/drilldown.py", "Item drill-down", ":material/graphic_eq:"),
    ("Listening tests", "views/mushra_metrics.py", "MUSHRA vs metrics", ":material/hearing:"),
    ("Listening tests", "views/mushra_listen.py", "MUSHRA listener", ":material/headphones:"),
    ("Listening tests", "views/mushra_admin.py", "MUSHRA admin", ":material/tune:"),
]


def navigation(pages: list[tuple[str, str, str, str]]):
    """st.navigation over `pages`, grouped by section in their listed order.

    A listener's link (?t= or ?open=) shows no menu: nothing that names conditions is one click
    away from a test in progress.
    """
    sections: dict[str, list] = {}
    for index, (section, script, title, icon) in enumerate(pages):
        sections.setdefault(section, []).append(st.Page(HERE / script, title=title, icon=icon, default=index == 0))
    listener = "t" in st.query_params or "open" in st.query_params
    return st.navigation(sections, position="hidden" if listener else "sidebar")


def favicon():
    """Three bars on the report's blue, drawn here: a material-icon favicon would be fetched online."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (32, 32), (31, 78, 121, 255))
    draw = ImageDraw.Draw(image)
    for x, top in ((6, 14), (14, 6), (22, 18)):
        draw.rectangle((x, top, x + 4, 26), fill="white")
    return image


st.set_page_config(page_title="evalkit", page_icon=favicon(), layout="wide")
navigation(PAGES).run()
