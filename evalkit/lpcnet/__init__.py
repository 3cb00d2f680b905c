"""LPCNet-style speech coding: features, the 1.6 kbit/s quantizer, the framewise vocoder and the codec."""
