"""Test signals and tiny training configs shared by the neural codec tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import yaml

from evalkit.audio import Audio, save


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def voice(seconds: float = 1.5, f0: float = 120.0, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """A voiced-speech-like test signal: a gliding harmonic series in a 4 Hz envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.1 * harmonics * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def rvq_train_config(tmp_path: Path, steps: int, model: dict, **losses) -> Path:
    """A training config of the rvq recipe on four short voices, adversarial losses off unless asked."""
    data = tmp_path / "data"
    for i, f0 in enumerate((90, 130, 180, 240)):
        save(Audio(voice(1.2, f0, i), 16000), data / f"v{i}.wav")
    config = {
        "recipe": "rvq",
        "seed": 0,
        "run_dir": str(tmp_path / "run"),
        "data": {"train": str(data), "crop_seconds": 0.4},
        "model": model,
        "discriminator": {"fft_sizes": [256, 128], "filters": 4},
        "optim": {"batch_size": 4, "steps": steps, "warmup_steps": 1, "lr": 0.003},
        "losses": {"adversarial_start": 10**6, **losses},
        "run": {"log_every": 5, "checkpoint_every": 5, "threads": 1},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def decoded_in_chunks(model, codes, frames: int = 3):
    """An RVQ model's streaming decode of `codes`, `frames` code frames at a time, joined."""
    import torch

    pieces, state = [], None
    for start in range(0, codes.shape[-1], frames):
        out, state = model.decode_stream(codes[..., start : start + frames], state)
        pieces.append(out)
    return torch.cat(pieces, -1)
