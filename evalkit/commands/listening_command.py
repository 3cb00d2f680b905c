"""`evalkit listening rejections|duplicates|select-items|power`: panel bookkeeping and test design aids.

The parser lives in evalkit.cli (building it must stay light); this runs the commands and prints. Every
problem is a ConfigError the CLI prints on one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..text_tables import format_table

__all__ = ["run_listening"]


def run_listening(args: argparse.Namespace) -> int:
    from ..store import connect

    needs_database = args.listening_command != "power" or args.pilot or args.run
    engine = connect(args.database, create=False) if needs_database else None
    return {"rejections": _rejections, "duplicates": _duplicates, "select-items": _select_items, "power": _power}[
        args.listening_command
    ](engine, args)


def _rejections(engine, args) -> int:
    from ..listening.crowd import record_rejections, rejections_frame
    from ..listening.responses import progress

    progress(engine, args.test)  # ConfigError naming the test when there is none
    if args.record:
        print(f"recorded {record_rejections(engine, args.test)} new rejection(s) of {args.test}")
    frame = rejections_frame(engine, args.test)
    return _show(frame, args, f"no rejected sessions in {args.test}")


def _duplicates(engine, args) -> int:
    from ..listening.crowd import duplicate_workers

    return _show(duplicate_workers(engine), args, "no panel worker appears in more than one test")


def _show(frame: pd.DataFrame, args, empty: str) -> int:
    """The frame as CSV (to --output or stdout) with --export csv, else as a text table."""
    if args.export == "csv":
        from ..listening.safetext import spreadsheet_safe

        frame = spreadsheet_safe(frame)
        if args.output:
            path = Path(args.output)
            if path.exists() and not args.force:
                raise ConfigError(f"{path} exists; pass --force to overwrite it")
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            print(f"wrote {len(frame)} row(s) to {path}")
        else:
            print(frame.to_csv(index=False), end="")
        return 0
    print(format_table(list(frame.columns), frame.astype(str).itertuples(index=False)) if len(frame) else empty)
    return 0


def _select_items(engine, args) -> int:
    from ..listening.items import select_items
    from ..report.data import load_run

    run = load_run(engine, args.run)
    chosen = select_items(run.results, args.count, args.by, args.metrics, args.codecs)
    shown = chosen.assign(score=chosen["score"].map(lambda v: f"{v:.3f}"))
    print(format_table(list(shown.columns), shown.astype(str).itertuples(index=False)))
    print(f"items: [{', '.join(chosen['item'])}]")
    return 0


def _power(engine, args) -> int:
    from ..listening.power import Spread, Subset, listeners_needed, pilot_spread, power, simulate_power

    kind = args.type or "mushra"
    if args.pilot:
        frame, pilot_type = _pilot_frame(engine, args.pilot)
        spread, kind = pilot_spread(frame, args.conditions), args.type or pilot_type
    elif args.noise is not None:
        spread = Spread(args.noise, args.interaction or 0.0, args.listener_sd or 0.0, "given sds")
    else:
        raise ConfigError("power needs the spread of the ratings: --pilot TEST, or --noise SD (and --interaction SD)")
    for name, value in (
        ("--noise", spread.noise),
        ("--interaction", spread.interaction),
        ("--listener-sd", spread.listener),
    ):
        if not value >= 0 or value == float("inf"):
            raise ConfigError(f"{name} must be a finite number, not negative, got {value:g}")
    if args.simulate < 0:
        raise ConfigError(f"--simulate must be 0 (no simulation) or more, got {args.simulate}")
    if args.items < 1:
        raise ConfigError(f"--items must be at least 1, got {args.items}")
    effect = args.effect if args.effect is not None else _effect_from_run(engine, args)
    subset = Subset(args.per_session, args.test_conditions) if args.per_session is not None else None
    if subset is not None:
        subset.check(args.items)
    needed = listeners_needed(effect, spread, args.items, args.power, args.alpha, subset)
    print(
        f"spread ({spread.source}): noise sd {spread.noise:.3g}, listener x condition sd {spread.interaction:.3g}, "
        f"listener sd {spread.listener:.3g}"
    )
    print(
        f"listeners needed: {needed} (difference {effect:.3g} on the {kind} scale, {args.items} items, "
        f"power {power(effect, spread, needed, args.items, args.alpha, subset):.3f} >= {args.power:g}, "
        f"two-sided alpha {args.alpha:g})"
    )
    if subset is not None and subset.per_session < args.items * subset.conditions:
        print(
            f"design: each listener rates {subset.per_session} of the {args.items * subset.conditions} pages "
            f"({args.items} items x {subset.conditions} conditions); tested over those who rated both conditions"
        )
    if args.simulate:
        simulated = simulate_power(
            effect,
            spread,
            needed,
            args.items,
            kind,
            alpha=args.alpha,
            simulations=args.simulate,
            seed=args.seed,
            subset=subset,
        )
        print(
            f"simulated power with {needed} listeners: {simulated:.3f} ({args.simulate} simulated tests, "
            f"seed {args.seed})"
        )
    return 0


def _effect_from_run(engine, args) -> float:
    """The difference two codecs of a run show on a metric, carried onto the test's scale by --slope or by the
    pilot's condition means against the same metric (the same run must have scored the pilot's conditions)."""
    from ..listening.analysis import load_test
    from ..listening.power import run_difference, scale_slope
    from ..report.agreement import system_level
    from ..report.data import load_run
    from ..report.listening import stimulus_frame

    if not (args.run and args.metric and args.codecs and len(args.codecs) == 2):
        raise ConfigError("give the difference to detect: --effect D, or --run RUN --metric M --codecs BETTER WORSE")
    run = load_run(engine, args.run)
    difference, items = run_difference(run.results, args.metric, *args.codecs)
    slope = args.slope
    if slope is None:
        if not args.pilot:
            raise ConfigError("--run needs --slope (listening-scale units per metric unit) or a --pilot scored in it")
        loaded = load_test(engine, args.pilot)
        stimuli = stimulus_frame(loaded.kept, run.results, loaded.setup.scored_as(), loaded.setup.reference_and_anchors)
        slope = scale_slope(system_level(stimuli[stimuli["metric"] == args.metric]))
    if not (np.isfinite(slope) and slope != 0):
        raise ConfigError(f"--slope must be a finite number other than 0, got {slope:g}")
    print(
        f"{args.codecs[0]} - {args.codecs[1]} on {args.metric} in run {args.run}: {difference:.4g} over {items} "
        f"item(s); x {slope:.4g} per unit = {difference * slope:.3g} on the test's scale"
    )
    return difference * slope


def _pilot_frame(engine, name: str) -> tuple[pd.DataFrame, str]:
    """The kept scores of pilot test `name`, its hidden reference and anchors left out (they barely vary)."""
    from ..listening.analysis import load_test

    loaded = load_test(engine, name)
    if loaded.type.name not in ("mushra", "acr"):
        raise ConfigError(f"test {name!r} is of type {loaded.type.name}; the power analysis takes MUSHRA or ACR pilots")
    kept = loaded.kept
    if kept.empty:
        raise ConfigError(f"pilot test {name!r} has no kept ratings yet")
    return kept[~kept["condition"].isin(loaded.setup.reference_and_anchors)], loaded.type.name
