"""Listening-test ratings from anywhere: import webMUSHRA, BeaqleJS and long tables as external tests;
export any test as evalkit's tidy table or in webMUSHRA's layout. docs/ratings.md describes the formats."""

from .exporter import EXPORT_FORMATS, export_ratings, tidy_ratings, webmushra_ratings
from .importer import FORMATS, ImportResult, RatingsError, import_ratings
from .mapping import ConditionMap, ImportMap, load_map

__all__ = [
    "FORMATS",
    "EXPORT_FORMATS",
    "import_ratings",
    "export_ratings",
    "tidy_ratings",
    "webmushra_ratings",
    "ImportResult",
    "RatingsError",
    "ImportMap",
    "ConditionMap",
    "load_map",
]
