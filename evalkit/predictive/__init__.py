"""Predictive coding of LPCNet-style features: a recurrent frame predictor, residuals coded with dynamic bit allocation."""

from .. import codecs  # noqa: F401  first: the codec registry imports this package's backend
