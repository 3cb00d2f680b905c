"""The low-rank spectrogram codec: NMF (or PCA) bases of block magnitude spectra, phase by Griffin–Lim."""
