"""The profile table of the default codec set (one card per family), against the reference codec.

Each card is measured in a fresh one-thread process on the same 10 s of demo speech (warm
medians). The machine is shared and noisy, so the ratios to the identity codec measured in the
same run ("reference": 16-bit PCM) are the numbers to compare across runs. Loss curves are left
out here (they measure quality, not cost): `evalkit profile --all` adds them.
"""

from __future__ import annotations

from evalkit.cards import load_cards
from evalkit.profile import default_cards, profile_card, profile_speech
from evalkit.text_tables import format_table

BASELINE = "reference"
REPEATS = 5


def row(profile, base) -> list[str]:
    cpu = profile.encode_cpu_s_per_hour + profile.decode_cpu_s_per_hour
    base_cpu = base.encode_cpu_s_per_hour + base.decode_cpu_s_per_hour
    macs = "/".join(
        "-" if v is None else f"{v / 1e6:.0f}M" for v in (profile.macs_encoder_per_s, profile.macs_decoder_per_s)
    )
    measured = "-" if profile.measured_latency_ms is None else f"{profile.measured_latency_ms:.1f}"
    return [
        profile.codec,
        profile.family,
        f"{profile.encode_rtf:.5f}",
        f"{profile.decode_rtf:.5f}",
        f"{profile.encode_rtf / base.encode_rtf:.1f}",
        f"{profile.decode_rtf / base.decode_rtf:.1f}",
        f"{cpu:.1f}",
        f"{cpu / base_cpu:.1f}",
        macs,
        f"{profile.peak_memory_mb:.0f}",
        f"{profile.peak_memory_mb - base.peak_memory_mb:+.0f}",
        f"{profile.declared_latency_ms:.1f}",
        measured + ("" if profile.latency_ok in (True, None) else " MISMATCH"),
        "yes" if profile.streaming else "no",
    ]


def main() -> None:
    audio = profile_speech(10.0)
    cards = default_cards(load_cards())
    profiles = {card.name: profile_card(card, audio, loss=False, repeats=REPEATS).profile for card in cards}
    base = profiles[BASELINE]
    header = [
        "codec",
        "family",
        "enc_rtf",
        "dec_rtf",
        "enc_x",
        "dec_x",
        "cpu_s_per_h",
        "cpu_x",
        "macs_per_s",
        "peak_mb",
        "mb_vs_base",
        "latency_ms",
        "measured_ms",
        "streaming",
    ]
    print(
        f"{audio.duration:.0f} s of speech, one thread, median of {REPEATS}, each card in a fresh process; "
        f"baseline = {BASELINE} (PCM)"
    )
    print(format_table(header, [row(profiles[name], base) for name in profiles]))


if __name__ == "__main__":
    main()
