"""Neural codecs: encode and decode real-time factor on one thread, and MACs per second of audio.

Rows: every available `rvq` card (evalkit's trained model), then each pretrained-codec adapter
whose package is installed, built at its published architecture with random weights (no
weights are downloadable here; speed and MACs do not depend on the weights' values). MACs
come from evalkit.profile's counter (torch FlopCounterMode: convolutions and matmuls).
Adapter parameter counts are of the whole model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path

from bench_codecs import REPEATS, speech, time_codec

from evalkit.cards import load_cards
from evalkit.text_tables import format_table

# Published configurations: encodec_24khz; hubertsiuzdak/snac_24khz; kyutai/mimi (MimiConfig defaults).
SNAC_24KHZ = {
    "sampling_rate": 24000,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_adapters(folder: Path) -> dict:
    """name -> adapter codec at the published architecture with random weights (installed ones only)."""
    with warnings.catch_warnings():  # encodec's deprecated weight_norm, transformers' notices
        warnings.simplefilter("ignore")
        return _random_adapters(folder)


def _random_adapters(folder: Path) -> dict:
    import torch

    from evalkit.neural.adapters import ENCODEC_24KHZ, EncodecAdapter, MimiAdapter, SnacAdapter, _build_encodec

    torch.manual_seed(0)
    codecs = {}
    if EncodecAdapter.unavailable() is None:
        torch.save(_build_encodec(ENCODEC_24KHZ).state_dict(), folder / "encodec.th")
        codecs["encodec-6k (random)"] = EncodecAdapter(str(folder / "encodec.th"), _sha(folder / "encodec.th"), 6.0)
    if SnacAdapter.unavailable() is None:
        from snac import SNAC

        (folder / "snac").mkdir()
        (folder / "snac" / "config.json").write_text(json.dumps(SNAC_24KHZ))
        torch.save(SNAC(**SNAC_24KHZ).state_dict(), folder / "snac" / "pytorch_model.bin")
        codecs["snac-24k (random)"] = SnacAdapter(str(folder / "snac"), _sha(folder / "snac" / "pytorch_model.bin"))
    if MimiAdapter.unavailable() is None:
        from transformers import MimiConfig, MimiModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        MimiModel(MimiConfig()).save_pretrained(folder / "mimi")
        codecs["mimi-8q (random)"] = MimiAdapter(str(folder / "mimi"), _sha(folder / "mimi" / "model.safetensors"), 8)
    return codecs


def complexity_row(codec) -> list[str]:
    from evalkit.profile.complexity import measure_complexity

    parts = measure_complexity(codec) or {}
    enc, dec = parts.get("encoder"), parts.get("decoder")
    return [
        f"{enc.macs_per_second / 1e6:.0f}" if enc else "-",
        f"{dec.macs_per_second / 1e6:.0f}" if dec else "-",
        f"{max(p.params for p in parts.values()) / 1e6:.2f}" if parts else "-",
    ]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    audio = speech()
    cards = {n: c for n, c in sorted(load_cards().items()) if c.backend == "rvq" and c.unavailable() is None}
    codecs = {name: card.build() for name, card in cards.items()}
    with tempfile.TemporaryDirectory() as tmp:
        codecs.update(random_adapters(Path(tmp)))
        rows = []
        for name, codec in codecs.items():
            enc, dec = time_codec(codec, audio)
            info = codec.info
            rows.append(
                [
                    name,
                    f"{info.nominal_bitrate / 1000:.2f}",
                    f"{enc / audio.duration:.4f}",
                    f"{dec / audio.duration:.4f}",
                    *complexity_row(codec),
                ]
            )
    print(
        f"{audio.duration:.0f} s of speech, one thread, median of {REPEATS}; MACs per second of audio (convolutions, matmuls)"
    )
    print(format_table(["codec", "kbit/s", "enc_rtf", "dec_rtf", "enc_MMAC/s", "dec_MMAC/s", "params_M"], rows))


if __name__ == "__main__":
    main()
