"""Score codec cards (or freshly trained rvq weights) on the held-out demo corpus: mean and SD per metric.

    python scripts/score_neural.py rvq-v2-3k codec2-3200 --metrics pesq_wb visqol_speech warpq
    python scripts/score_neural.py --rvq results/train/rvq-v2/model.pt:6      # weights file : codebooks

Every item goes through evalkit.harness.roundtrip (the real bitstream) and evalkit.metrics.evaluate;
failed rows are counted, never averaged. Used to pick training settings and to fill the cards' scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.cache import file_digest  # noqa: E402
from evalkit.cards import find_card  # noqa: E402
from evalkit.datasets import load_dataset  # noqa: E402
from evalkit.demo import DEMO_MANIFEST  # noqa: E402
from evalkit.harness import roundtrip  # noqa: E402
from evalkit.metrics import evaluate  # noqa: E402
from evalkit.tables import format_table  # noqa: E402


def build(spec: str):
    """A codec from a card name or from 'WEIGHTS:N_Q' (rvq backend, weights pinned by their own hash)."""
    if ":" not in spec:
        return find_card(spec).build()
    from evalkit.neural.codec import RVQCodec

    path, n_q = spec.rsplit(":", 1)
    return RVQCodec(str(Path(path).resolve()), file_digest(Path(path)), int(n_q))


def score(codec, items, metrics: list[str]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for item in items:
        audio = item.load()
        run = roundtrip(codec, audio)
        values.setdefault("kbps", []).append(run.bitrate / 1000)
        for name in metrics:
            for row in evaluate(name, audio, run.decoded, item.text):
                values.setdefault(row.metric, []).append(row.value if row.status == "ok" else np.nan)
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cards", nargs="*", help="codec card names")
    parser.add_argument("--rvq", action="append", default=[], help="WEIGHTS:N_Q of an rvq model to score")
    parser.add_argument("--metrics", nargs="+", default=["pesq_wb", "visqol_speech", "warpq"])
    parser.add_argument("--limit", type=int, default=0, help="first N demo items only (quick looks)")
    parser.add_argument("--json", type=Path, help="also write the per-item values here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    items = load_dataset(DEMO_MANIFEST)[: args.limit or None]
    results, rows = {}, []
    for spec in args.cards + args.rvq:
        results[spec] = values = score(build(spec), items, args.metrics)
        columns = sorted(values, key=lambda k: (k != "kbps", k))
        rows.append([spec] + [_mean_sd(values[k]) for k in columns])
    print(f"{len(items)} demo items; mean ± SD (failed rows: n/a)")
    print(format_table(["codec"] + columns, rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def _mean_sd(values: list[float]) -> str:
    array = np.asarray(values, dtype=float)
    ok = array[np.isfinite(array)]
    failed = len(array) - len(ok)
    text = f"{ok.mean():.2f} ± {ok.std():.2f}" if len(ok) else "n/a"
    return text + (f" ({failed} failed)" if failed else "")


if __name__ == "__main__":
    sys.exit(main())
