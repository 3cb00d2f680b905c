"""Predictive coding of LPCNet-style features: a recurrent frame predictor, residuals coded with dynamic bit allocation."""
