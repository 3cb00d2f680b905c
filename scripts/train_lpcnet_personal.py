"""Speaker groups for the personalised LPCNet codec: train the speaker encoder, group the speakers, bundle.

    python scripts/train_lpcnet_personal.py groups [--groups 3]   # encoder + k-means groups + group manifests
    evalkit train configs/train_lpcnet_group0.yaml ...            # fine-tune the generic vocoder per group
    python scripts/train_lpcnet_personal.py bundle                # one weights file for lpcnet-personal
    python scripts/train_lpcnet_personal.py extract --group 2     # continue one group's fine-tuning:
    evalkit train configs/train_lpcnet_group2_continue.yaml       #   its current vocoder as `init`
    python scripts/train_lpcnet_personal.py replace --group 2 --model results/train/lpcnet-group2-continue/model.npz

`groups` trains the 2 x GRU speaker encoder (GE2E) on the training set without the demo
speakers, embeds every training speaker (mean of up to 30 utterances), splits them into
--groups groups by spherical k-means and writes results/training-set/group-<i>.jsonl (the
speakers' items), results/lpcnet/speaker.npz (encoder + centroids) and a summary: the speakers
of each group and the group each held-out demo speaker is assigned to (majority of its items).
`bundle` writes the encoder, the centroids and every group's vocoder into --out. Seeded.
`extract` writes one group's vocoder of a bundle as a weights file to fine-tune from, and the
small vocoder's quantizer codebooks (the ones the codec uses) as results/lpcnet/quantizer.npz;
`replace` writes a copy of a bundle with one group's vocoder replaced, every other array unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.audio import resample, to_mono  # noqa: E402
from evalkit.datasets import load_dataset  # noqa: E402
from evalkit.lpcnet.speaker import SpeakerEncoder, speaker_groups  # noqa: E402
from evalkit.lpcnet.weights import load_weights, save_weights  # noqa: E402

TRAINING = ROOT / "results" / "training-set"
WORK = ROOT / "results" / "lpcnet"
DEMO = ROOT / "data" / "demo" / "manifest.jsonl"


def samples(item) -> np.ndarray:
    return to_mono(resample(item.load(), 16000)).samples[0]


def speaker_embeddings(encoder: SpeakerEncoder, items_by_speaker: dict, per_speaker: int, seed: int) -> dict:
    rng, out = np.random.default_rng(seed), {}
    for speaker, items in sorted(items_by_speaker.items()):
        chosen = [items[i] for i in rng.permutation(len(items))[:per_speaker]]
        mean = np.mean([encoder.embed(samples(item)) for item in chosen], axis=0)
        out[speaker] = mean / np.linalg.norm(mean)
    return out


def groups_command(args) -> None:
    import torch

    from evalkit.lpcnet.speaker_train import SegmentSampler, train_speaker_encoder

    torch.set_num_threads(1)
    items = load_dataset(args.data)
    demo = load_dataset(DEMO)
    clash = {i.speaker for i in items} & {i.speaker for i in demo}
    if clash:
        raise SystemExit(f"{args.data} has demo speakers {sorted(clash)}: use manifest-no-demo-speakers.jsonl")
    by_speaker = defaultdict(list)
    for item in items:
        by_speaker[item.speaker].append(item)
    start = time.monotonic()
    sampler = SegmentSampler(by_speaker, per_speaker=args.per_speaker, seed=args.seed)
    print(
        f"speaker encoder: {len(by_speaker)} speakers, segments loaded in {time.monotonic() - start:.0f} s", flush=True
    )
    model, history = train_speaker_encoder(
        sampler, WORK, steps=args.steps, seed=args.seed, log=lambda m: print(m, flush=True)
    )
    arrays = model.arrays()
    encoder = SpeakerEncoder(arrays)
    embeddings = speaker_embeddings(encoder, by_speaker, 30, args.seed)
    centroids, membership = speaker_groups(embeddings, args.groups, seed=args.seed)
    encoder.centroids = centroids.astype(np.float32)
    demo_groups = assign(encoder, demo)
    config = {
        "groups": args.groups,
        "membership": membership,
        "demo_assignment": demo_groups,
        "encoder_steps": args.steps,
        "ge2e_loss": history,
        "seconds": round(time.monotonic() - start),
    }
    save_weights(
        WORK / "speaker.npz",
        config=config,
        extra_arrays={**{f"speaker.{k}": v for k, v in arrays.items()}, "speaker.centroids": centroids},
    )
    write_group_manifests(args.data, membership, args.groups)
    print(json.dumps(summary(membership, demo_groups, by_speaker), indent=1))


def assign(encoder: SpeakerEncoder, items) -> dict:
    """Each demo speaker's group: the majority over its items (ties to the lower group)."""
    votes = defaultdict(Counter)
    for item in items:
        votes[item.speaker][encoder.group(samples(item))] += 1
    return {speaker: {"group": min(c, key=lambda g: (-c[g], g)), "votes": dict(c)} for speaker, c in votes.items()}


def write_group_manifests(manifest: Path, membership: dict, groups: int) -> None:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    for group in range(groups):
        chosen = [r for r in rows if membership.get(r["speaker"]) == group]
        path = manifest.parent / f"group-{group}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8")


def summary(membership: dict, demo_groups: dict, by_speaker: dict) -> dict:
    out = {}
    for group in sorted(set(membership.values())):
        speakers = sorted(s for s, g in membership.items() if g == group)
        minutes = sum(i.extra.get("duration", 0.0) for s in speakers for i in by_speaker[s]) / 60
        out[f"group {group}"] = {
            "speakers": speakers,
            "count": len(speakers),
            "minutes": round(minutes, 1),
            "demo speakers": sorted(s for s, d in demo_groups.items() if d["group"] == group),
        }
    return out


def bundle_command(args) -> None:
    speaker = load_weights(WORK / "speaker.npz")
    arrays = dict(speaker.arrays)
    config = {**speaker.config, "vocoder": "framewise", "group_weights": []}
    for group in range(speaker.config["groups"]):
        weights = load_weights(ROOT / "results" / "train" / f"lpcnet-group{group}" / "model.npz")
        config["vocoder_config"] = weights.config["vocoder_config"]
        config["group_weights"].append(weights.config.get("notes", {}))
        arrays.update({f"group{group}.vocoder.{k}": v for k, v in weights.section("vocoder.").items()})
    path = save_weights(args.out, config=config, extra_arrays=arrays)
    print(f"wrote {path}")


def extract_command(args) -> None:
    bundle = load_weights(args.bundle)
    vocoder = bundle.section(f"group{args.group}.vocoder.")
    if not vocoder:
        raise SystemExit(f"{args.bundle}: no group {args.group}")
    config = {"vocoder": bundle.config.get("vocoder", "framewise"), "vocoder_config": bundle.config["vocoder_config"]}
    config["notes"] = {"extracted_from": f"{args.bundle.name} group {args.group}"}
    out = args.out / f"{args.bundle.stem}-group{args.group}.npz"
    save_weights(out, config=config, extra_arrays={f"vocoder.{k}": v for k, v in vocoder.items()})
    quantizer = save_weights(args.out / "quantizer.npz", codebooks=load_weights(args.small).codebooks())
    print(f"wrote {out} and {quantizer}")


def replace_command(args) -> None:
    bundle, model = load_weights(args.bundle), load_weights(args.model)
    prefix = f"group{args.group}.vocoder."
    if model.config["vocoder_config"] != bundle.config["vocoder_config"] or not bundle.section(prefix):
        raise SystemExit(f"{args.model} does not fit group {args.group} of {args.bundle}")
    arrays = {k: v for k, v in bundle.arrays.items() if not k.startswith(prefix)}
    arrays.update({prefix + k: v for k, v in model.section("vocoder.").items()})
    config = dict(bundle.config, group_weights=list(bundle.config.get("group_weights", [{}] * bundle.config["groups"])))
    config["group_weights"][args.group] = {**model.config.get("notes", {}), **args.note}
    print(f"wrote {save_weights(args.out, config=config, extra_arrays=arrays)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    groups = commands.add_parser("groups", help="train the speaker encoder and group the speakers")
    groups.add_argument("--data", type=Path, default=TRAINING / "manifest-no-demo-speakers.jsonl")
    groups.add_argument("--groups", type=int, default=3)
    groups.add_argument("--steps", type=int, default=1500)
    groups.add_argument("--per-speaker", type=int, default=60, help="items per speaker held in memory")
    groups.add_argument("--seed", type=int, default=0)
    current = ROOT / "codecs" / "weights" / "lpcnet-16k-personal-v1.npz"
    bundle = commands.add_parser("bundle", help="one weights file: encoder, centroids, group vocoders")
    bundle.add_argument("--out", type=Path, default=current)
    extract = commands.add_parser("extract", help="one group's vocoder and the quantizer codebooks, to fine-tune")
    extract.add_argument("--group", type=int, required=True)
    extract.add_argument("--bundle", type=Path, default=current)
    extract.add_argument("--small", type=Path, default=ROOT / "codecs" / "weights" / "lpcnet-16k-small-v1.npz")
    extract.add_argument("--out", type=Path, default=WORK, help="folder for the two files")
    replace = commands.add_parser("replace", help="a copy of a bundle with one group's vocoder replaced")
    replace.add_argument("--group", type=int, required=True)
    replace.add_argument("--model", type=Path, required=True, help="the trainer's export (model.npz)")
    replace.add_argument("--bundle", type=Path, default=current)
    replace.add_argument("--out", type=Path, default=ROOT / "codecs" / "weights" / "lpcnet-16k-personal-v2.npz")
    replace.add_argument("--note", type=json.loads, default={}, help="JSON object added to the group's notes")
    args = parser.parse_args(argv)
    run = {"groups": groups_command, "bundle": bundle_command, "extract": extract_command, "replace": replace_command}
    run[args.command](args)


if __name__ == "__main__":
    main()
