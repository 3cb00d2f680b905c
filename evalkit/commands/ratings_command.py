"""`evalkit ratings import|export|stats`: listening-test ratings in and out of the database, and their statistics."""

from __future__ import annotations

import argparse

__all__ = ["run_ratings"]


def run_ratings(args: argparse.Namespace) -> int:
    from ..mushra.ratings.exporter import export_ratings
    from ..mushra.ratings.importer import import_ratings
    from ..mushra.ratings.stats_report import stats_text
    from ..store import connect

    engine = connect(args.database)
    if args.ratings_command == "import":
        result = import_ratings(
            engine,
            args.files,
            args.ratings_format,
            args.test,
            args.map,
            args.reference,
            args.anchors,
            args.mid_anchor,
            args.screening,
            args.replace,
            args.cards,
        )
        print(result.describe())
    elif args.ratings_command == "export":
        path = export_ratings(engine, args.test, args.output, args.ratings_format, args.force, args.completed_only)
        print(f"wrote {path}")
    else:
        print(stats_text(engine, args.test))
    return 0
