"""The demo MUSHRA test (tests_mushra/demo.yaml, real codecs), made once per pytest session for the tests that need it.

Not a test module: tests/test_mushra_blinding.py and tests/test_mushra_browser.py import it. Each
caller gets its own database; the decoded codec outputs are cached under the session's base
temporary folder, so only the first creation runs the codecs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml

from evalkit import mushra
from evalkit.mushra.spec import spec_from_dict
from evalkit.store import connect

DEMO = Path(__file__).resolve().parent.parent / "tests_mushra" / "demo.yaml"


def make_demo_test(tmp_path_factory, label: str, **changes) -> SimpleNamespace:
    """Create and launch the demo test (with `changes` to its definition) in a new SQLite database."""
    folder = tmp_path_factory.mktemp(label)
    cache = tmp_path_factory.getbasetemp() / "mushra-demo-cache"
    url = f"sqlite:///{folder / 'evalkit.db'}"
    engine = connect(url)
    data = {**yaml.safe_load(DEMO.read_text()), **changes}
    spec = spec_from_dict(data, base=DEMO.parent, source=str(DEMO))
    mushra.create_test(engine, spec, stimulus_root=folder / "stimuli", cache_root=cache)
    info = mushra.launch_test(engine, spec.name)
    return SimpleNamespace(engine=engine, url=url, folder=folder, name=spec.name, info=info, spec=spec)
