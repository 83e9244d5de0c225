"""The receipt format and its verifier: canonical records and their leaves, the Merkle rules,
Chainpoint receipts, and the stand-alone verifier.

Imports nothing else of trialnotary (a test enforces it): it is what a reviewer installs,
and everything else builds on it, never the other way round.
"""
