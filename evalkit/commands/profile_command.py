"""`evalkit profile`: profile the chosen codec cards, store each profile and print it."""

from __future__ import annotations

import argparse
import sys

from ..audio import MIN_COST_SECONDS
from ..cards import load_cards
from ..errors import ConfigError, EvalkitError
from ..profile.printout import parse_rates, profile_table, profile_text
from ..profile.profiler import ProfileRun, profile_card, profile_speech

__all__ = ["run_profile"]


def run_profile(args: argparse.Namespace) -> int:
    """Profile the cards `args` names (or every available one), store and print each."""
    from ..store import connect

    rates = parse_rates(args.loss_rates)
    if args.seeds < 1 or args.repeats < 1 or not args.seconds > 0:
        raise ConfigError("--seeds and --repeats must be at least 1 and --seconds positive")
    if args.seconds < MIN_COST_SECONDS:  # shorter audio gives real-time factors and a delay check of no meaning
        raise ConfigError(f"--seconds {args.seconds:g}: profiles need at least {MIN_COST_SECONDS:g} s of speech")
    chosen = _chosen(load_cards(args.cards), args.codec, args.all)
    engine, audio = connect(args.database), profile_speech(args.seconds)
    if audio.duration < args.seconds:
        print(f"note: the demo speech lasts {audio.duration:.1f} s: profiling on all of it", file=sys.stderr)
    runs = [_profile_and_store(card, engine, audio, rates, args) for card in chosen]
    done = [run.profile for run in runs if run is not None]
    if len(done) > 1:
        print(profile_table(done))
    return 0 if len(done) == len(runs) else 1


def _profile_and_store(card, engine, audio, rates: list[float], args: argparse.Namespace) -> ProfileRun | None:
    from ..profile.database import write_profile

    try:
        run = profile_card(
            card, audio, loss=not args.no_loss, rates=rates, seeds=range(args.seeds), repeats=args.repeats
        )
    except EvalkitError as err:
        if not args.all:
            raise
        print(f"evalkit: error: {card.name}: {err}", file=sys.stderr)  # one broken card must not stop --all
        return None
    write_profile(engine, run)
    print(profile_text(run) + "\n", flush=True)
    return run


def _chosen(cards: dict, names: list[str], every: bool) -> list:
    if every:
        return [card for _, card in sorted(cards.items()) if card.unavailable() is None]
    missing = [name for name in names if name not in cards]
    if missing:
        raise ConfigError(f"unknown codec {missing[0]!r}; run 'evalkit codecs' to list them")
    return [cards[name] for name in names]
