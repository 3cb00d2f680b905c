"""evalkit's Streamlit app, for the signed-in admin: this entry point lists the pages; each page is a thin script.

Serve it with `evalkit app` (app/server.py: the listener's pages and the sign-in page beside it, and
every Streamlit path behind the admin session). The database is $EVALKIT_DB_URL, else
results/evalkit.db under the working directory. Listeners never reach these pages: theirs is /listen.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from evalkit.listening.auth import sign_out

HERE = Path(__file__).resolve().parent

# The app's pages: (sidebar section, script relative to app/, title, icon). The first is the default
# page, served at "/"; the others at "/<script file name without .py>".
PAGES: list[tuple[str, str, str, str]] = [
    ("Results", "views/leaderboard.py", "Leaderboard", ":material/leaderboard:"),
    ("Results", "views/rate_quality.py", "Rate–quality", ":material/show_chart:"),
    ("Results", "views/quality_cost.py", "Quality vs cost", ":material/speed:"),
    ("Results", "views/drilldown.py", "Item drill-down", ":material/graphic_eq:"),
    ("Listening tests", "views/mushra_metrics.py", "Listening tests vs metrics", ":material/hearing:"),
    ("Listening tests", "views/mushra_admin.py", "MUSHRA admin", ":material/tune:"),
]


def navigation(pages: list[tuple[str, str, str, str]]):
    """st.navigation over `pages`, grouped by section in their listed order."""
    sections: dict[str, list] = {}
    for index, (section, script, title, icon) in enumerate(pages):
        sections.setdefault(section, []).append(st.Page(HERE / script, title=title, icon=icon, default=index == 0))
    return st.navigation(sections)


def favicon():
    """Three bars on the report's blue, drawn here: a material-icon favicon would be fetched online."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (32, 32), (31, 78, 121, 255))
    draw = ImageDraw.Draw(image)
    for x, top in ((6, 14), (14, 6), (22, 18)):
        draw.rectangle((x, top, x + 4, 26), fill="white")
    return image


def require_admin() -> None:
    """Every page needs the admin's session (the server's gate checks it too, before any page loads)."""
    session = ui.signed_in()
    if session is None:
        st.title("evalkit")
        st.info("Sign in as admin to see results and listening tests (or your session has expired).")
        st.link_button("Sign in", "/signin", type="primary")
        st.stop()
    st.sidebar.caption(f"Signed in as {session.account} until {session.expires_at:%Y-%m-%d %H:%M} UTC")
    if st.sidebar.button("Sign out"):
        sign_out(ui.database(), ui.admin_cookie())  # the cookie stays, but opens nothing any more
        st.rerun()


# Streamlit runs this file as __main__. A worker process started from a process that ran it (Streamlit's
# AppTest leaves it as the main module) re-imports it as __mp_main__: that must build no page.
if __name__ == "__main__":
    import ui  # app/ is on the import path only when Streamlit runs this file

    st.set_page_config(page_title="evalkit", page_icon=favicon(), layout="wide")
    require_admin()
    navigation(PAGES).run()
