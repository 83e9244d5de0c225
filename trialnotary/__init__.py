"""trialnotary: a notary for clinical-trial data."""

__version__ = "0.1.0"
