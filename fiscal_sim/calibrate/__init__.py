"""Learn from actuals: award history, conjugate calibration of uptake priors, scenario overlays, backtests."""
