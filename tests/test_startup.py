"""The command line starts light: building the parser and listing codecs import no heavy package.

A structural check (which modules got imported, in a fresh interpreter), not a timing:
benchmarks/bench_startup.py measures the time against `python -c pass`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Packages that take a large part of a second (or several) to import, none needed to start.
HEAVY = (
    "torch",
    "streamlit",
    "pandas",
    "sqlalchemy",
    "alembic",
    "scipy",
    "matplotlib",
    "pyarrow",
    "sklearn",
    "ai_edge_litert",
    "tflite_runtime",
    "onnxruntime",
    "pesq",
    "pystoi",
    "visqol",
    "warpq",
    "speechmos",
    "librosa",
    "numba",
    "pocketsphinx",
    "transformers",
    "encodec",
    "snac",
    "dask",
    "distributed",
)

PROBE = """
import contextlib, io, json, sys
from evalkit.cli import build_parser, main
build_parser()
after_parser = sorted(sys.modules)
with contextlib.redirect_stdout(io.StringIO()):
    main(["codecs"])
print(json.dumps({"parser": after_parser, "codecs": sorted(sys.modules)}))
"""


def _imported() -> dict[str, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {stage: {name.split(".")[0] for name in modules} for stage, modules in found.items()}


def test_parser_and_codec_listing_import_no_heavy_package():
    imported = _imported()
    assert not imported["parser"] & {*HEAVY, "numpy", "yaml", "av"}, "building the parser imports these"
    assert not imported["codecs"] & set(HEAVY), "listing the codecs imports these"


def test_a_worker_starts_without_compilers_or_models():
    """Every worker process imports evalkit.tasks (the fork server preloads it): what is imported there
    is paid by each worker in start-up and memory; numba, torch and even scipy (a second and 70 MB) load
    only where a task needs them (the fork server preloads the run's metric packages besides)."""
    code = "import json, sys; import evalkit.tasks; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    imported = {name.split(".")[0] for name in json.loads(done.stdout.strip().splitlines()[-1])}
    assert not imported & {
        "torch",
        "numba",
        "streamlit",
        "matplotlib",
        "librosa",
        "transformers",
        "onnxruntime",
        "scipy",
        "pandas",
        "sqlalchemy",
    }


def test_anchor_designs_are_kept_on_disk_and_a_damaged_one_is_redesigned(tmp_path, monkeypatch):
    from evalkit.codecs import reference

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = reference._design(3500.0, 48000)
    reference.anchor_taps.cache_clear()
    assert np.array_equal(reference.anchor_taps(3500.0, 48000), fresh)
    stored = reference._design_cache(3500.0, 48000)
    assert stored.is_relative_to(tmp_path) and np.array_equal(np.load(stored), fresh)
    stored.write_bytes(b"not an array")
    reference.anchor_taps.cache_clear()
    assert np.array_equal(reference.anchor_taps(3500.0, 48000), fresh) and np.array_equal(np.load(stored), fresh)
    reference.anchor_taps.cache_clear()


def test_rvq_reads_its_model_config_without_torch_as_torch_does():
    from evalkit.cards import find_card
    from evalkit.neural.codec import _load_model, _model_config

    for card in ("rvq-3k", "rvq-v2-3k"):
        codec = find_card(card).build()
        quick, model = _model_config(codec.path, codec.sha256), _load_model(codec.path, codec.sha256).config
        assert (quick.sample_rate, quick.hop, quick.codebook_size, quick.n_q, quick.lookahead) == (
            model.sample_rate,
            model.hop,
            model.codebook_size,
            model.n_q,
            model.lookahead,
        )


@pytest.mark.parametrize(
    "module", ["evalkit.tasks", "evalkit.cache", "evalkit.neural.codec", "evalkit.neural.adapters"]
)
def test_modules_a_worker_unpickles_first_import_on_their_own(module):
    """`import evalkit` loads nothing eagerly, so each module must import without a cycle as the first."""
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, check=True, capture_output=True)
