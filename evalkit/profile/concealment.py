"""How a codec conceals lost packets: its own method, or a generic strategy a neural backend declares.

DSP backends conceal inside `_decode` (Opus PLC and FEC, AMR bad-frame handling, Codec2 and
LC3 repetition, silence where a standard defines nothing): their strategy is "codec". A backend
without its own concealment declares one of the generic strategies in its CodecInfo,
``concealment="repeat"`` or ``"zero"``, and uses the helpers here in its `_decode`:

* ``repeat``: decode the last received packet again in place of a lost one (the decoder state
  moves on as if it had arrived twice); nothing is repeated before the first packet arrives.
* ``zero``: output silence for the lost packet's duration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["CONCEALMENT", "concealment_of", "repeat_last", "zero_fill"]

CONCEALMENT = ("codec", "repeat", "zero")


def concealment_of(codec) -> str:
    """The strategy the codec declares in its CodecInfo ("codec": it conceals itself)."""
    strategy = codec.info.concealment
    if strategy not in CONCEALMENT:
        raise ConfigError(f"{codec!r}: concealment {strategy!r} is not one of {', '.join(CONCEALMENT)}")
    return strategy


def repeat_last(packets: Sequence[bytes | None]) -> list[bytes | None]:
    """Each lost packet replaced by the last one received; leading losses stay None."""
    out: list[bytes | None] = []
    last = None
    for packet in packets:
        last = packet if packet is not None else last
        out.append(last)
    return out


def zero_fill(chunks: Sequence[np.ndarray | None], frame_samples: int, channels: int = 1) -> np.ndarray:
    """Decoded chunks (channels, n) concatenated in time, with `frame_samples` of silence per None."""
    silence = np.zeros((channels, frame_samples), np.float32)
    parts = [silence if chunk is None else np.atleast_2d(np.asarray(chunk, np.float32)) for chunk in chunks]
    return np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), np.float32)
