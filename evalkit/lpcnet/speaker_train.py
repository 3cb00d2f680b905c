"""Training the speaker encoder (torch): the 2 x GRU model, the GE2E softmax loss and a segment sampler.

`train_speaker_encoder` is seeded, checkpoints every `checkpoint_every` steps to
run_dir/speaker-checkpoint.pt (atomically) and resumes from it; the trained weights are
returned as the arrays `SpeakerEncoder` (speaker.py) reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio import resample, to_mono
from .speaker import N_MELS, SEGMENT_FRAMES, log_mels

__all__ = ["SpeakerNet", "ge2e_loss", "SegmentSampler", "train_speaker_encoder"]


class SpeakerNet(nn.Module):
    """Log-mels (B, T, 40) -> unit-length embeddings (B, dims); GE2E's scale and offset ride along."""

    def __init__(self, hidden: int = 128, dims: int = 64):
        super().__init__()
        self.gru = nn.GRU(N_MELS, hidden, num_layers=2, batch_first=True)
        self.proj = nn.Linear(hidden, dims)
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.offset = nn.Parameter(torch.tensor(-5.0))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(mels)
        e = self.proj(states.mean(dim=1))
        return e / e.norm(dim=-1, keepdim=True).clamp_min(1e-9)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: t.detach().float().numpy().copy()
            for name, t in self.state_dict().items()
            if name not in ("scale", "offset")
        }


def ge2e_loss(embeddings: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """GE2E softmax loss of (speakers, utterances, dims) unit embeddings: each utterance's scaled cosine
    to its own speaker's centroid (computed without it) against those to the other centroids."""
    speakers, utterances, _ = embeddings.shape
    total = embeddings.sum(dim=1)
    centroids = nn.functional.normalize(total / utterances, dim=-1)
    own = nn.functional.normalize((total[:, None] - embeddings) / (utterances - 1), dim=-1)
    sim = torch.einsum("sud,kd->suk", embeddings, centroids)
    own_sim = (embeddings * own).sum(-1)
    mask = torch.eye(speakers, dtype=torch.bool, device=embeddings.device)[:, None, :].expand(-1, utterances, -1)
    sim = torch.where(mask, own_sim[..., None].expand_as(sim), sim)
    logits = scale.clamp_min(1e-6) * sim + offset
    target = torch.arange(speakers, device=embeddings.device)[:, None].expand(-1, utterances)
    return nn.functional.cross_entropy(logits.reshape(-1, speakers), target.reshape(-1))


class SegmentSampler:
    """Random 1.6 s log-mel segments per speaker, half of them band-limited; seeded."""

    def __init__(self, items_by_speaker: dict[str, list], per_speaker: int = 60, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.speakers = sorted(items_by_speaker)
        self.mels = {}
        for speaker in self.speakers:
            items = items_by_speaker[speaker]
            chosen = [items[i] for i in self.rng.permutation(len(items))[:per_speaker]]
            self.mels[speaker] = [self._load(item) for item in chosen]

    @staticmethod
    def _load(item) -> tuple[np.ndarray, np.ndarray]:
        x = to_mono(resample(item.load(), 16000)).samples[0]
        return log_mels(x).astype(np.float16), log_mels(x, band_limited=True).astype(np.float16)

    def batch(self, speakers: int, utterances: int) -> np.ndarray:
        """(speakers, utterances, 160, 40)."""
        chosen = self.rng.choice(len(self.speakers), size=min(speakers, len(self.speakers)), replace=False)
        return np.stack([[self._segment(self.speakers[s]) for _ in range(utterances)] for s in chosen])

    def _segment(self, speaker: str) -> np.ndarray:
        full, limited = self.mels[speaker][self.rng.integers(len(self.mels[speaker]))]
        mels = limited if self.rng.random() < 0.5 else full
        start = self.rng.integers(0, max(1, len(mels) - SEGMENT_FRAMES + 1))
        segment = np.asarray(mels[start : start + SEGMENT_FRAMES], np.float32)
        segment = np.pad(segment, ((0, SEGMENT_FRAMES - len(segment)), (0, 0)), mode="edge")
        return segment - segment.mean()


def train_speaker_encoder(
    sampler: SegmentSampler,
    run_dir: Path,
    steps: int = 1500,
    speakers: int = 8,
    utterances: int = 6,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint_every: int = 100,
    threads: int = 1,
    log=print,
) -> tuple[SpeakerNet, list[float]]:
    """Train (or resume) the encoder on `threads` CPU threads; returns it and the mean loss of each logged stretch."""
    torch.set_num_threads(threads)  # small recurrent batches: more threads only contend
    torch.manual_seed(seed)
    model = SpeakerNet()
    opt = torch.optim.Adam(model.parameters(), lr)
    path, step, history = Path(run_dir) / "speaker-checkpoint.pt", 0, []
    if path.is_file():
        state = torch.load(path, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sampler.rng.bit_generator.state = state["sampler"]
        torch.set_rng_state(state["torch_rng"])
        step, history = state["step"], state["history"]
        log(f"speaker encoder: resumed at step {step}")
    losses, start = [], time.monotonic()
    while step < steps:
        batch = torch.from_numpy(sampler.batch(speakers, utterances))
        n, m = batch.shape[:2]
        loss = ge2e_loss(
            model(batch.reshape(n * m, SEGMENT_FRAMES, N_MELS)).reshape(n, m, -1), model.scale, model.offset
        )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % checkpoint_every == 0 or step == steps:
            history.append(float(np.mean(losses)))
            log(f"speaker encoder: step {step}, GE2E loss {history[-1]:.3f}, {time.monotonic() - start:.0f} s")
            losses = []
            _save(
                path,
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "history": history,
                    "sampler": sampler.rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                },
            )
    return model, history


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
