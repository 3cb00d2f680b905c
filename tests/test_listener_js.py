"""The listener page's JavaScript: its pure functions under node's test runner, eslint over its modules, and
TypeScript checking their JSDoc types. Skips with the reason when node (Debian's nodejs) or the pinned
tools (`npm ci`) are missing; CI has both.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
ESLINT = ROOT / "node_modules" / ".bin" / "eslint"
TSC = ROOT / "node_modules" / ".bin" / "tsc"


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(NODE is None, reason="needs node for the player's unit tests: apt-get install -y nodejs")
def test_the_players_pure_functions_pass_their_node_tests():
    result = run([NODE, "--test", "tests/js/"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout


@pytest.mark.skipif(
    NODE is None or not ESLINT.exists(),
    reason="needs node and the pinned eslint: apt-get install -y nodejs npm && npm ci",
)
def test_the_listener_modules_pass_eslint():
    result = run([str(ESLINT), "--max-warnings", "0", "evalkit/listening/static", "tests/js"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.skipif(
    NODE is None or not TSC.exists(),
    reason="needs node and the pinned typescript: apt-get install -y nodejs npm && npm ci",
)
def test_the_listener_modules_agree_with_their_jsdoc_types():
    result = run([str(TSC), "-p", "tsconfig.json"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_module_the_page_imports_is_served_as_javascript():
    """A browser runs an ES module only with a JavaScript MIME type; every import must name a served file."""
    import re

    from evalkit.listening.web import ASSETS, STATIC

    html = (STATIC / "listen.html").read_text()
    assert '<script type="module" src="/listen/assets/listen.js">' in html
    for path in STATIC.glob("*.js"):
        assert ASSETS[path.name] == "text/javascript", path.name
        for name in re.findall(r'from "\./([\w.-]+)"', path.read_text()):
            assert name in ASSETS, (path.name, name)
    assert ASSETS["listen.css"] == "text/css"
