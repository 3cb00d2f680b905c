"""The low-rank spectrogram codec: NMF (or PCA) bases of block magnitude spectra, phase by Griffin–Lim."""

from .. import codecs  # noqa: F401  first: the codec registry imports this package's backend
