"""Tables for the LPCNet experiment (configs/experiment_lpcnet.yaml): scores, per speaker group, right and wrong group.

    evalkit run configs/experiment_lpcnet.yaml && python scripts/report_lpcnet.py

Every demo item is assigned a speaker group by the lpcnet-1k6-personal card's speaker encoder,
as its encoder does. Printed: each codec's mean (and deviation) per metric with its measured
bitrate; per group, the personalised small vocoder (its own group) against the generic small
one on the same items, with paired p-values over items (Wilcoxon signed-rank and paired t);
and per item the right group against the wrong ones (the cost of a misassignment).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.audio import resample  # noqa: E402
from evalkit.cards import load_cards  # noqa: E402
from evalkit.datasets import load_dataset  # noqa: E402
from evalkit.text_tables import format_table  # noqa: E402

METRICS = ("visqol_speech", "warpq", "pesq_wb", "stoi")
LOWER_IS_BETTER = {"warpq"}
GENERIC, PERSONAL = "lpcnet-1k6", "lpcnet-1k6-personal"
OFF = "@postfilter=False"  # configs/experiment_lpcnet_postfilter.yaml's condition with the postfilter off
BASELINE = "codec2-1600"


def frames(database: str, run: str):
    from sqlalchemy import create_engine

    from evalkit.store.run_results import results_frame, roundtrips_frame

    engine = create_engine(database)
    results = results_frame(engine, run)
    return results[results["status"] == "ok"], roundtrips_frame(engine, run)


def item_groups() -> dict[str, int]:
    card = load_cards()[PERSONAL]
    codec = card.build()
    return {
        item.id: codec.encoder.group(resample(item.load(), 16000).samples[0])
        for item in load_dataset(ROOT / "data" / "demo" / "manifest.jsonl")
    }


def scores_table(results, trips) -> str:
    rows = []
    for codec in sorted(results["codec"].unique()):
        cells = [codec]
        kbps = trips.loc[trips["codec"] == codec, "bitrate"].mean() / 1000
        cells.append(f"{kbps:.3f}")
        for metric in METRICS:
            values = results.loc[(results["codec"] == codec) & (results["metric"] == metric), "value"]
            cells.append(f"{values.mean():.3f} ± {values.std():.2f} (n={len(values)})" if len(values) else "-")
        rows.append(cells)
    return format_table(["codec", "kbit/s", *METRICS], rows)


def paired(results, a: str, b: str, metric: str, items: list[str]) -> tuple[float, float, float, float, int]:
    """(mean a, mean b, Wilcoxon p, paired-t p, n) over the items both codecs scored."""
    pivot = results[results["metric"] == metric].pivot_table(index="item_id", columns="codec", values="value")
    pivot = pivot.loc[[i for i in items if i in pivot.index], [a, b]].dropna()
    x, y = pivot[a].to_numpy(), pivot[b].to_numpy()
    if len(x) < 2 or np.allclose(x, y):
        return float(np.mean(x)) if len(x) else np.nan, float(np.mean(y)) if len(y) else np.nan, np.nan, np.nan, len(x)
    return (
        float(x.mean()),
        float(y.mean()),
        float(stats.wilcoxon(x, y).pvalue),
        float(stats.ttest_rel(x, y).pvalue),
        len(x),
    )


def group_table(results, groups: dict[str, int], speakers: dict[str, str]) -> str:
    rows = []
    for group in sorted(set(groups.values())) + ["all"]:
        items = [i for i, g in groups.items() if group == "all" or g == group]
        who = sorted({speakers[i] for i in items})
        for metric in METRICS[:2]:
            mine, generic, p_w, p_t, n = paired(results, PERSONAL, GENERIC, metric, items)
            rows.append([group, ",".join(who), metric, n, f"{mine:.3f}", f"{generic:.3f}", f"{p_w:.3g}", f"{p_t:.3g}"])
    return format_table(
        ["group", "speakers (unseen)", "metric", "items", "personal", "generic", "p_wilcoxon", "p_t"], rows
    )


def misassignment_table(results, groups: dict[str, int]) -> str:
    rows = []
    swept = {int(c.rsplit("=", 1)[1]): c for c in results["codec"].unique() if c.startswith(f"{PERSONAL}@group=")}
    for metric in METRICS[:2]:
        values = results[results["metric"] == metric].pivot_table(index="item_id", columns="codec", values="value")
        right, wrong = [], []
        for item, group in groups.items():
            others = [values.at[item, swept[g]] for g in swept if g != group and item in values.index]
            if item in values.index and group in swept and others:
                right.append(values.at[item, swept[group]])
                wrong.append(np.mean(others))
        if len(right) > 1:
            p = stats.wilcoxon(right, wrong).pvalue
            rows.append([metric, len(right), f"{np.mean(right):.3f}", f"{np.mean(wrong):.3f}", f"{p:.3g}"])
    return format_table(["metric", "items", "right group", "wrong groups (mean)", "p_wilcoxon"], rows)


def postfilter_halves(items: list[str]) -> dict[str, list[str]]:
    """The items the postfilter's parameters were chosen on (every other item id in sorted order,
    from the first), the held-out rest, and all."""
    ordered = sorted(items)
    return {"chosen on": ordered[0::2], "held out": ordered[1::2], "all": ordered}


def postfilter_table(results) -> str:
    """Per card and half of the items: postfilter off, on, Codec 2 1600, and the paired p (on vs off)."""
    rows = []
    halves = postfilter_halves(list(results["item_id"].unique()))
    for off in sorted(c for c in results["codec"].unique() if c.endswith(OFF)):
        card = off.removesuffix(OFF)
        for metric in METRICS:
            for half, items in halves.items():
                on, without, p_w, _, n = paired(results, card, off, metric, items)
                base = (
                    paired(results, card, BASELINE, metric, items)[1] if BASELINE in set(results["codec"]) else np.nan
                )
                rows.append([card, metric, half, n, f"{without:.3f}", f"{on:.3f}", f"{base:.3f}", f"{p_w:.3g}"])
    return format_table(["card", "metric", "items", "n", "off", "on", BASELINE, "p_wilcoxon on/off"], rows)


def baseline_table(results) -> str:
    """Each quantized LPCNet card against Codec 2 1600 per half of the items, with the paired p."""
    rows = []
    halves = postfilter_halves(list(results["item_id"].unique()))
    cards = [c for c in (GENERIC, f"{GENERIC}-large", PERSONAL) if c in set(results["codec"])]
    for card in cards if BASELINE in set(results["codec"]) else []:
        for metric in METRICS:
            for half, items in halves.items():
                mine, base, p_w, _, n = paired(results, card, BASELINE, metric, items)
                rows.append([card, metric, half, n, f"{mine:.3f}", f"{base:.3f}", f"{mine - base:+.3f}", f"{p_w:.3g}"])
    return format_table(["card", "metric", "items", "n", "card", BASELINE, "difference", "p_wilcoxon"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="sqlite:///results/lpcnet/evalkit.db")
    parser.add_argument("--run", default="lpcnet-heldout")
    args = parser.parse_args(argv)
    results, trips = frames(args.database, args.run)
    groups = item_groups()
    speakers = {item.id: item.speaker for item in load_dataset(ROOT / "data" / "demo" / "manifest.jsonl")}
    print(scores_table(results, trips), end="\n\n")
    print("Against Codec 2 1600, paired over items (first half: the items settings were chosen on):")
    print(baseline_table(results), end="\n\n")
    print("Personalised (own group) vs generic small, paired over items:")
    print(group_table(results, groups, speakers), end="\n\n")
    print("Right group vs wrong groups (forced), per item:")
    print(misassignment_table(results, groups))
    if any(c.endswith(OFF) for c in results["codec"].unique()):
        print("\nDecoder postfilter off / on (parameters chosen on the first half of the items):")
        print(postfilter_table(results))


if __name__ == "__main__":
    main()
