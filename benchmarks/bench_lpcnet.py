"""LPCNet-style codecs: encode and decode real-time factor on one thread beside Codec 2 and Opus, and MACs.

Rows: every available `lpcnet` / `lpcnet-personal` card, lpcnet-1k6 with its decoder's postfilter
off (what the postfilter costs), then codec2-1600 and opus-6k measured in
the same run as baselines; `dec_vs_codec2` is the decode time as a multiple of Codec 2 1600's
(the machine is shared, so ratios are what carry over). A decoder is real time when its dec_rtf
is below 1. MACs per second: the vocoder's matrix products (evalkit.profile's counter on the
torch model; the decoder itself runs the same arithmetic in numba).
"""

from __future__ import annotations

from dataclasses import replace

from bench_codecs import REPEATS, speech, time_codec
from bench_neural import complexity_row

from evalkit.cards import load_cards
from evalkit.text_tables import format_table

BASELINES = ("codec2-1600", "opus-6k")
UNFILTERED = "lpcnet-1k6@postfilter=False"


def main() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # the codecs run without torch; only MAC counting needs it
        torch = None
    audio = speech()
    cards = load_cards()
    names = [n for n, c in sorted(cards.items()) if c.backend.startswith("lpcnet") and c.unavailable() is None]
    if "lpcnet-1k6" in names:
        plain = cards["lpcnet-1k6"]
        cards[UNFILTERED] = replace(plain, name=UNFILTERED, params={**plain.params, "postfilter": False})
        names.append(UNFILTERED)
    names += [n for n in BASELINES if n in cards and cards[n].unavailable() is None]
    timings = {name: time_codec(cards[name].build(), audio) for name in names}
    baseline = timings.get("codec2-1600", (None, None))[1]
    rows = []
    for name in names:
        codec = cards[name].build()
        enc, dec = timings[name]
        macs = complexity_row(codec) if torch is not None and hasattr(codec, "torch_modules") else ["-", "-", "-"]
        ratio = f"{dec / baseline:.1f}" if baseline else "-"
        rows.append(
            [
                name,
                f"{codec.info.nominal_bitrate / 1000:.2f}",
                f"{enc / audio.duration:.4f}",
                f"{dec / audio.duration:.4f}",
                ratio,
                *macs,
            ]
        )
    print(f"{audio.duration:.0f} s of speech, one thread, median of {REPEATS}")
    print(
        format_table(
            ["codec", "kbit/s", "enc_rtf", "dec_rtf", "dec_vs_codec2", "enc_MMAC/s", "dec_MMAC/s", "params_M"], rows
        )
    )


if __name__ == "__main__":
    main()
