"""LPCNet-style speech coding: features, the 1.6 kbit/s quantizer, the framewise vocoder and the codec."""

from .. import codecs  # noqa: F401  first: the codec registry imports this package's backends
