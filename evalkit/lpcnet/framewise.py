"""The framewise vocoder (torch, for training): a FARGAN-like excitation network behind the LPC synthesis filter.

Per 10 ms frame the frame-rate network (pitch embedding, 2 causal convolutions of kernel 3,
2 fully connected layers) turns the 20 features into a conditioning vector. Per subframe
(`subframe` samples: 40, i.e. 2.5 ms as in FARGAN, or 80) the subframe network generates the
excitation from that vector, the pitch prediction (the excitation one pitch period back,
subframe + 4 samples around it), the previous subframe's excitation, fresh noise and two GRU
states; its output, softly bounded (tanh) at 32 times the excitation RMS the LPC analysis
predicts, is scaled by that RMS (times a learned correction). The excitation then goes through
the frame's LPC synthesis filter 1/A(z) and the de-emphasis filter, both exact recursions
(filters.py) that the loss is back-propagated through. Everything is causal: frame k's samples
depend on features up to frame k only.

The network runs free (it feeds back its own excitation in training too), so training sees
what inference does; `inference.py` runs the same arithmetic compiled with numba.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..config import dataclass_from_dict
from .features import FRAME, NB_BANDS, PREEMPHASIS, SCALE
from .filters import allpole, allpole_adjoint
from .pitch import MAX_PERIOD, MIN_PERIOD

__all__ = ["VocoderConfig", "FrameRateNet", "FramewiseVocoder", "AllPole", "pitch_prediction", "LIMIT"]

LIMIT = 32.0  # soft bound of the excitation in units of its expected RMS: keeps the pitch feedback stable


@dataclass(frozen=True)
class VocoderConfig:
    cond: int = 128  # frame-rate network width
    embed: int = 64  # pitch embedding
    gru1: int = 192  # first GRU (the GRU_A analogue: the size that sets quality and cost)
    gru2: int = 128
    hidden: int = 128  # output layer
    subframe: int = 40  # samples generated per step (a divisor of the 160-sample frame)

    def __post_init__(self):
        if self.subframe not in (20, 40, 80, 160):
            raise ValueError(f"subframe must divide the 160-sample frame (20, 40, 80 or 160), got {self.subframe}")

    @property
    def subframes(self) -> int:
        return FRAME // self.subframe

    @property
    def pitch_taps(self) -> int:
        return self.subframe + 4  # the pitch prediction reaches 2 samples beyond either end

    @property
    def history(self) -> int:
        return MAX_PERIOD + self.pitch_taps  # excitation samples looked back at most

    @classmethod
    def from_dict(cls, data: dict) -> VocoderConfig:
        return dataclass_from_dict(cls, data, "LPCNet vocoder", int)

    def to_dict(self) -> dict:
        return asdict(self)


def pitch_index(period: torch.Tensor) -> torch.Tensor:
    return (period.round().long() - MIN_PERIOD).clamp(0, MAX_PERIOD - MIN_PERIOD)


class FrameRateNet(nn.Module):
    """Features (B, F, 20) -> conditioning (B, F, cond), causal over frames."""

    def __init__(self, config: VocoderConfig):
        super().__init__()
        self.embedding = nn.Embedding(MAX_PERIOD - MIN_PERIOD + 1, config.embed)
        width = NB_BANDS + 2 + config.embed
        self.conv1 = nn.Conv1d(width, config.cond, 3)
        self.conv2 = nn.Conv1d(config.cond, config.cond, 3)
        self.fc1 = nn.Linear(config.cond, config.cond)
        self.fc2 = nn.Linear(config.cond, config.cond)
        self.register_buffer("feature_mean", torch.zeros(NB_BANDS))
        self.register_buffer("feature_std", torch.ones(NB_BANDS))

    def inputs(self, feats: torch.Tensor) -> torch.Tensor:
        ceps = (feats[..., :NB_BANDS] - self.feature_mean) / self.feature_std
        period = feats[..., NB_BANDS]
        logp = torch.log2(period.clamp(MIN_PERIOD, MAX_PERIOD) / MIN_PERIOD)[..., None] / 3 - 0.5
        corr = feats[..., NB_BANDS + 1 : NB_BANDS + 2] - 0.5
        return torch.cat([ceps, logp, corr, self.embedding(pitch_index(period))], dim=-1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.inputs(feats).transpose(1, 2)
        x = torch.tanh(self.conv1(nn.functional.pad(x, (2, 0))))
        x = torch.tanh(self.conv2(nn.functional.pad(x, (2, 0))))
        x = x.transpose(1, 2)
        return torch.tanh(self.fc2(torch.tanh(self.fc1(x))))


class AllPole(torch.autograd.Function):
    """y = 1/A(z) x with per-frame coefficients (no gradient for them): numba forward and adjoint."""

    @staticmethod
    def forward(ctx, x, a, hop):
        ctx.save_for_backward(a)
        ctx.hop = hop
        y = allpole(x.detach().cpu().double().numpy(), a.detach().cpu().double().numpy(), hop)
        return torch.from_numpy(y).to(x.dtype).to(x.device)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        g = allpole_adjoint(grad.detach().cpu().double().numpy(), a.cpu().double().numpy(), ctx.hop)
        return torch.from_numpy(g).to(grad.dtype).to(grad.device), None, None


class SubframeNet(nn.Module):
    """One 40-sample excitation subframe from the conditioning, pitch prediction, history and noise."""

    def __init__(self, config: VocoderConfig):
        super().__init__()
        taps, size, count = config.pitch_taps, config.subframe, config.subframes
        self.gain = nn.Linear(config.cond, count)
        self.inp = nn.Linear(config.cond + count + taps + 2 * size, config.gru1)  # + pitch, previous, noise
        self.gru1 = nn.GRUCell(config.gru1, config.gru1)
        self.gru2 = nn.GRUCell(config.gru1 + taps, config.gru2)
        self.out1 = nn.Linear(config.gru1 + config.gru2 + taps + size, config.hidden)
        self.out2 = nn.Linear(config.hidden, size)
        self.pitch_gain = nn.Linear(config.gru1 + config.gru2, 1)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.gain.bias)

    def forward(self, cond, position, pred, prev, noise, h1, h2):
        """(excitation / gain, h1, h2): all signals already divided by the subframe's gain."""
        x = torch.tanh(self.inp(torch.cat([cond, position, pred, prev, noise], dim=-1)))
        h1 = self.gru1(x, h1)
        h2 = self.gru2(torch.cat([h1, pred], dim=-1), h2)
        states = torch.cat([h1, h2], dim=-1)
        o = torch.tanh(self.out1(torch.cat([states, pred, noise], dim=-1)))
        centre = pred[:, 2:-2]
        raw = self.out2(o) + torch.sigmoid(self.pitch_gain(states)) * centre
        return LIMIT * torch.tanh(raw / LIMIT), h1, h2


class FramewiseVocoder(nn.Module):
    """Features -> 16 kHz speech in [-1, 1], through the excitation network and the LPC filters."""

    def __init__(self, config: VocoderConfig | None = None):
        super().__init__()
        self.config = config or VocoderConfig()
        self.frame_net = FrameRateNet(self.config)
        self.subframe_net = SubframeNet(self.config)

    def excitation(self, feats, exc_rms, noise):
        """(B, F * 160) excitation, free-running; feats (B, F, 20), exc_rms (B, F), noise (B, F * 160)."""
        batch, frames = feats.shape[:2]
        cond = self.frame_net(feats)
        config = self.config
        gains = exc_rms[..., None] * torch.exp(self.subframe_net.gain(cond))  # (B, F, subframes)
        lags = feats[..., NB_BANDS].round().long().clamp(MIN_PERIOD, MAX_PERIOD)
        history = feats.new_zeros(batch, config.history)
        h1 = feats.new_zeros(batch, config.gru1)
        h2 = feats.new_zeros(batch, config.gru2)
        eye = torch.eye(config.subframes, dtype=feats.dtype, device=feats.device)
        size, outputs = config.subframe, []
        for k in range(frames):
            for j in range(config.subframes):
                gain = gains[:, k, j : j + 1]
                pred = pitch_prediction(history, lags[:, k], config.pitch_taps) / gain
                prev = history[:, -size:] / gain
                start = (k * config.subframes + j) * size
                shaped, h1, h2 = self.subframe_net(
                    cond[:, k], eye[j].expand(batch, -1), pred, prev, noise[:, start : start + size], h1, h2
                )
                exc = shaped * gain
                outputs.append(exc)
                history = torch.cat([history[:, size:], exc], dim=1)
        return torch.cat(outputs, dim=1)

    def forward(self, feats, lpc, exc_rms, noise):
        """(B, F * 160) speech in [-1, 1] from features, their LPC (B, F, 16) and excitation RMS (B, F)."""
        exc = self.excitation(feats, exc_rms, noise)
        speech = AllPole.apply(exc, lpc, FRAME)
        emphasis = lpc.new_full((lpc.shape[0], 1, 1), -PREEMPHASIS)
        return AllPole.apply(speech, emphasis, speech.shape[1]) / SCALE


def pitch_prediction(history: torch.Tensor, lags: torch.Tensor, taps: int) -> torch.Tensor:
    """(B, taps): history[n - lag - 2 + i] for the subframe starting at n = len(history); positions
    inside the subframe (not generated yet) are folded back by whole periods."""
    size = history.shape[1]
    positions = torch.arange(taps, device=history.device)[None, :] - lags[:, None] - 2
    for _ in range(-(-taps // MIN_PERIOD)):
        positions = torch.where(positions >= 0, positions - lags[:, None], positions)
    return torch.gather(history, 1, positions + size)
