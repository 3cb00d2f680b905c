"""Train the predictive codec: the frame predictor, the residual codebooks and the entropy models.

    nice -n 19 python -m evalkit.predictive.train --features FEATURES.npz --out results/predictive/model.npz

FEATURES.npz holds one (frames, 20) array of LPCNet-style features per training item (what
scripts/train_lpcnet_quantizer.py caches); 5 % of the items (seeded) are held out to report
the predictor's residual energy. Stages, each saved in OUT's folder so a rerun resumes:

1. `teacher`: the predictor on clean previous frames plus Gaussian noise (teacher forcing);
2. `codebooks0`: residual codebooks by k-means on the teacher-forced model's residuals;
3. `scheduled`: scheduled sampling: the predictor runs closed loop with those quantizers, its
   input being the quantized reconstruction with a probability rising from 0 to 1 (else the clean
   frame), with a random allocation per sequence, so that it learns not to drift;
4. `codebooks`: codebooks again, on the closed-loop residuals of the final predictor;
5. export: predictor + codebooks; then `evalkit.predictive.rates` adds the entropy models.

Torch runs on one thread (`--threads`); everything is seeded; `--max-minutes` bounds the two
training stages together (teacher forcing ends at `--teacher-share` of it): a stage ends at its
steps or its share of the wall budget, whichever comes first, and its learning-rate decay and
sampling ramp follow that progress.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .network import FramePredictor, TorchQuantizer, predictor_arrays
from .predictor import NB_CEPSTRA, PredictorConfig
from .residual import Codebooks

__all__ = ["load_features", "split_items", "train", "main"]

WARMUP = 10  # frames at the start of a crop that only set the recurrent state (not in the loss)
REFERENCE_PERCENTILE = 60.0  # the small-residual quantizers are trained below this percentile


def load_features(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: np.asarray(data[key], np.float32) for key in data.files if len(data[key]) > 2 * WARMUP}


def split_items(feats: dict[str, np.ndarray], seed: int, held_out: float = 0.05) -> tuple[list, list]:
    """(training arrays, held-out arrays): a seeded share of the items held out."""
    names = sorted(feats)
    order = np.random.default_rng(seed).permutation(len(names))
    cut = max(1, int(round(held_out * len(names))))
    return [feats[names[i]] for i in order[cut:]], [feats[names[i]] for i in order[:cut]]


class Crops:
    """Random crops (B, T, 18) of cepstra from the training items, drawn in proportion to length."""

    def __init__(self, items: list[np.ndarray], frames: int, seed: int):
        self.items = [x[:, :NB_CEPSTRA] for x in items if len(x) >= frames]
        self.lengths = np.array([len(x) for x in self.items], np.float64)
        self.frames, self.rng = frames, np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        picks = self.rng.choice(len(self.items), size, p=self.lengths / self.lengths.sum())
        out = []
        for index in picks:
            start = self.rng.integers(0, len(self.items[index]) - self.frames + 1)
            out.append(self.items[index][start : start + self.frames])
        return torch.from_numpy(np.stack(out))


def _loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((prediction[:, WARMUP:] - target[:, WARMUP:]) ** 2)


def teacher_step(model, batch: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Teacher forcing: predict frames 1..T from the clean frames 0..T-1 plus noise."""
    previous = batch[:, :-1] + noise * torch.randn_like(batch[:, :-1])
    prediction, _ = model(previous)
    return _loss(prediction, batch[:, 1:])


def closed_loop(model, quantizer: TorchQuantizer, batch: torch.Tensor, feed: float, thresholds) -> tuple:
    """Run the predictor frame by frame; the next input is the quantized reconstruction with
    probability `feed` (per frame and sequence), else the clean frame. Returns (predictions of
    frames 1..T, quantized residuals, fine flags c0, fine flags vq)."""
    c0_threshold, vq_threshold = thresholds
    previous, state = batch[:, :1], None
    predictions, residuals, flags0, flags1 = [], [], [], []
    for t in range(1, batch.shape[1]):
        prediction, state = model(previous, state)
        prediction = prediction[:, 0]
        target = batch[:, t]
        quantized, fine0, fine1 = quantizer(target - prediction.detach(), c0_threshold, vq_threshold)
        reconstructed = prediction.detach() + quantized
        use = (torch.rand(len(batch)) < feed)[:, None]
        previous = torch.where(use, reconstructed, target)[:, None]
        predictions.append(prediction)
        residuals.append(target - prediction.detach())
        flags0.append(fine0)
        flags1.append(fine1)
    return torch.stack(predictions, 1), torch.stack(residuals, 1), torch.stack(flags0, 1), torch.stack(flags1, 1)


def kmeans(data: np.ndarray, k: int, seed: int, iterations: int = 20) -> np.ndarray:
    """k centroids of data (n, d) by scipy's k-means, started from k random rows (seeded); scipy's
    k-means++ start costs O(k^2 n), too slow for 1024 centroids."""
    import warnings

    from scipy.cluster.vq import kmeans2

    data = np.asarray(data, np.float64).reshape(len(data), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty cluster keeps its centroid
        centroids, _ = kmeans2(data, k, iter=iterations, minit="points", seed=np.random.default_rng(seed))
    return centroids


def train_codebooks(residuals: np.ndarray, seed: int, log=print) -> Codebooks:
    """Codebooks from residuals (n, 18): fine quantizers on all, small ones below the reference percentile."""
    r0, shape = residuals[:, 0], residuals[:, 1:]
    small0 = np.abs(r0) <= np.percentile(np.abs(r0), REFERENCE_PERCENTILE)
    l1 = np.abs(shape).sum(axis=1)
    small1 = l1 <= np.percentile(l1, REFERENCE_PERCENTILE)
    c0_fine = np.sort(kmeans(r0, 256, seed)[:, 0])
    c0_coarse = np.sort(kmeans(r0[small0], 16, seed + 1)[:, 0])
    vq1 = kmeans(shape, 1024, seed + 2)
    log("codebooks: c0 and first stage done")
    error = shape - vq1[_nearest_rows(vq1, shape)]
    vq2 = kmeans(error, 1024, seed + 3)
    vq_small = kmeans(shape[small1], 512, seed + 4)
    final = error - vq2[_nearest_rows(vq2, error)]
    log(f"codebooks: residual power c1-17 {np.mean(shape**2):.4f} -> two-stage {np.mean(final**2):.4f}")
    return Codebooks(c0_fine, c0_coarse, vq1, vq2, vq_small)


def _nearest_rows(book: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    from scipy.cluster.vq import vq

    return vq(vectors, book, check_finite=False)[0]


class Run:
    """The training run's state on disk: one checkpoint file, codebook files, the export."""

    def __init__(self, args, out: Callable[[str], None]):
        self.args, self.out, self.dir = args, out, args.out.parent
        self.dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self.dir / "predictive-checkpoint.pt"
        self.log_path = self.dir / "predictive-train.log"

    def log(self, message: str) -> None:
        self.out(message)
        with open(self.log_path, "a") as handle:
            handle.write(message + "\n")

    def save(self, state: dict) -> None:
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)

    def load(self) -> dict | None:
        return torch.load(self.checkpoint, weights_only=True) if self.checkpoint.is_file() else None

    def books(self, name: str) -> Codebooks | None:
        path = self.dir / f"{name}.npz"
        if not path.is_file():
            return None
        with np.load(path) as data:
            return Codebooks.from_arrays({k: data[k] for k in data.files})

    def save_books(self, name: str, books: Codebooks) -> None:
        np.savez(self.dir / f"{name}.npz", **books.arrays())


def _schedule(progress: float, base_lr: float) -> float:
    """Cosine decay to a tenth over the stage's progress (steps or wall budget, whichever runs out first)."""
    return float(
        base_lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, progress))))
    )  # a numpy scalar would not reload


def train(args, out: Callable[[str], None]) -> Path:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = Run(args, out)
    train_items, held_out = split_items(load_features(args.features), args.seed)
    crops = Crops(train_items, args.frames, args.seed)
    model = FramePredictor(PredictorConfig())
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr)
    state = run.load() or {"stage": "teacher", "step": 0, "elapsed": 0.0}
    if "model" in state:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        crops.rng.bit_generator.state = json.loads(state["crops"])
        torch.set_rng_state(state["torch_rng"])
        run.log(f"resumed at stage {state['stage']}, step {state['step']}")
    else:
        stacked = np.concatenate([x[:, :NB_CEPSTRA] for x in train_items])
        model.mean.copy_(torch.from_numpy(stacked.mean(axis=0)))
        model.std.copy_(torch.from_numpy(stacked.std(axis=0) + 1e-3))
        run.log(f"{len(train_items)} training items ({len(stacked) / 6000:.0f} min), {len(held_out)} held out")
    noise = 0.3 * torch.from_numpy(
        np.concatenate([np.diff(x[:, :NB_CEPSTRA], axis=0) for x in train_items[:500]]).std(axis=0)
    )
    started = time.monotonic() - state["elapsed"]

    def checkpoint():
        run.save(
            {
                **state,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "crops": json.dumps(crops.rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(),
                "elapsed": time.monotonic() - started,
            }
        )

    def elapsed() -> float:
        return time.monotonic() - started

    def teacher_progress() -> float:
        return max(state["step"] / args.teacher_steps, elapsed() / (60 * args.max_minutes * args.teacher_share))

    def scheduled_progress() -> float:
        budget = max(60.0, 60 * args.max_minutes - state["scheduled_from"])
        return max(state["step"] / args.scheduled_steps, (elapsed() - state["scheduled_from"]) / budget)

    if state["stage"] == "teacher":
        _loop(
            run,
            model,
            optimiser,
            state,
            teacher_progress,
            lambda: teacher_step(model, crops.batch(args.batch), noise),
            checkpoint,
            args.lr,
        )
        state.update(stage="codebooks0", step=0, teacher_done=state["step"])
        checkpoint()
    books = run.books("codebooks0")
    if books is None:
        books = train_codebooks(_teacher_residuals(model, crops, args, args.codebook_batches), args.seed, run.log)
        run.save_books("codebooks0", books)
    if state["stage"] in ("codebooks0", "scheduled"):
        if state["stage"] != "scheduled":
            state.update(stage="scheduled", scheduled_from=elapsed())
        quantizer = TorchQuantizer(books)
        thresholds = _threshold_range(_teacher_residuals(model, crops, args, batches=4))
        step_fn = lambda: _scheduled_step(model, quantizer, crops.batch(args.batch), state, args, thresholds)  # noqa: E731
        _loop(run, model, optimiser, state, scheduled_progress, step_fn, checkpoint, args.lr / 3)
        state.update(stage="codebooks", step=0, scheduled_done=state["step"])
        checkpoint()
    final = run.books("codebooks")
    if final is None:
        final = train_codebooks(
            _closed_loop_residuals(model, TorchQuantizer(books), crops, args, args.codebook_batches),
            args.seed + 10,
            run.log,
        )
        run.save_books("codebooks", final)
    report = held_out_energy(model, final, held_out)
    run.log("held-out residual energy per frame: " + json.dumps(report))
    return export(
        args.out,
        model,
        final,
        {
            "held_out": report,
            "seed": args.seed,
            "steps": {"teacher": state.get("teacher_done"), "scheduled": state.get("scheduled_done")},
            "batch": args.batch,
            "frames": args.frames,
            "items": len(train_items),
            "minutes": round(time.monotonic() - started) / 60,
        },
    )


def _loop(run, model, optimiser, state, progress, step_fn, checkpoint, lr) -> None:
    """Steps until `progress()` (the larger of the steps' and the wall budget's share done) reaches 1."""
    losses, last = [], time.monotonic()
    while (done := progress()) < 1.0:
        state["progress"] = done
        for group in optimiser.param_groups:
            group["lr"] = _schedule(done, lr)
        loss = step_fn()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        state["step"] += 1
        losses.append(float(loss.detach()))
        if state["step"] % 50 == 0:
            rate = 50 / (time.monotonic() - last)
            run.log(
                f"{state['stage']} step {state['step']} ({100 * done:.0f} %): loss {np.mean(losses):.4f} "
                f"({rate:.2f} steps/s)"
            )
            losses, last = [], time.monotonic()
        if state["step"] % 200 == 0:
            checkpoint()


def _scheduled_step(model, quantizer, batch, state, args, thresholds) -> torch.Tensor:
    """One closed-loop step; the reconstruction feeds back with a probability rising to 1 over 70 % of the stage."""
    feed = min(1.0, state.get("progress", 0.0) / 0.7)
    share = torch.rand(len(batch))  # per sequence: the share of frames coded fine, i.e. a random rate
    c0 = torch.from_numpy(np.quantile(thresholds[0], 1 - share.numpy())).float()
    vq = torch.from_numpy(np.quantile(thresholds[1], 1 - share.numpy())).float()
    prediction, *_ = closed_loop(model, quantizer, batch, feed, (c0, vq))
    return _loss(prediction, batch[:, 1:])


def _threshold_range(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples of |r0| and of the c1-17 L1 norms, whose quantiles turn a share of fine frames into thresholds."""
    return np.abs(residuals[:, 0]), np.abs(residuals[:, 1:]).sum(axis=1)


@torch.no_grad()
def _teacher_residuals(model, crops: Crops, args, batches: int = 40) -> np.ndarray:
    out = []
    for _ in range(batches):
        batch = crops.batch(64)
        prediction, _ = model(batch[:, :-1])
        out.append((batch[:, 1:] - prediction)[:, WARMUP:].reshape(-1, NB_CEPSTRA).numpy())
    return np.concatenate(out)


@torch.no_grad()
def _closed_loop_residuals(model, quantizer, crops: Crops, args, batches: int = 40) -> np.ndarray:
    """Residuals of the closed loop at a random allocation per sequence (as in training)."""
    thresholds = _threshold_range(_teacher_residuals(model, crops, args, batches=4))
    out = []
    for _ in range(batches):
        batch = crops.batch(64)
        share = torch.rand(len(batch))
        c0 = torch.from_numpy(np.quantile(thresholds[0], 1 - share.numpy())).float()
        vq = torch.from_numpy(np.quantile(thresholds[1], 1 - share.numpy())).float()
        _, residuals, _, _ = closed_loop(model, quantizer, batch, 1.0, (c0, vq))
        out.append(residuals[:, WARMUP:].reshape(-1, NB_CEPSTRA).numpy())
    return np.concatenate(out)


@torch.no_grad()
def held_out_energy(model, books: Codebooks, items: list[np.ndarray]) -> dict:
    """Mean squared residual per frame on held-out items: zero predictor, previous frame, the predictor
    teacher-forced (open loop) and closed loop at the finest allocation."""
    ceps = [torch.from_numpy(x[:, :NB_CEPSTRA])[None] for x in items]
    totals = {"zero": 0.0, "previous_frame": 0.0, "open_loop": 0.0, "closed_loop": 0.0}
    frames = 0
    quantizer = TorchQuantizer(books)
    for x in ceps:
        target = x[:, 1:]
        prediction, _ = model(x[:, :-1])
        closed, *_ = closed_loop(model, quantizer, x, 1.0, (torch.zeros(1), torch.zeros(1)))
        totals["zero"] += float((target**2).sum())
        totals["previous_frame"] += float(((target - x[:, :-1]) ** 2).sum())
        totals["open_loop"] += float(((target - prediction) ** 2).sum())
        totals["closed_loop"] += float(((target - closed) ** 2).sum())
        frames += target.shape[1]
    return {name: round(value / frames, 4) for name, value in totals.items()}


def export(path: Path, model, books: Codebooks, notes: dict) -> Path:
    from ..neural.bundle import save_bundle_arrays
    from .model import FORMAT

    arrays = {f"predictor.{k}": v for k, v in predictor_arrays(model).items()}
    arrays.update(books.arrays())
    return save_bundle_arrays(
        path, FORMAT, {"predictor": model.config.to_dict(), "allocations": [], "notes": notes}, arrays
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("results/predictive/model.npz"))
    parser.add_argument("--teacher-steps", type=int, default=3000)
    parser.add_argument("--scheduled-steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=110, help="frames per crop (the first 10 only warm up)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--codebook-batches",
        type=int,
        default=40,
        help="batches of 64 crops whose residuals train the codebooks (k-means time grows with it)",
    )
    parser.add_argument("--max-minutes", type=float, default=120.0)
    parser.add_argument(
        "--teacher-share",
        type=float,
        default=0.6,
        help="share of --max-minutes after which teacher forcing stops (scheduled sampling gets the rest)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    path = train(parser.parse_args(argv), lambda message: print(message, flush=True))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
