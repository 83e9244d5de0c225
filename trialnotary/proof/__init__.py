"""The receipt format and its verifier: canonical records and their leaves, Merkle proofs,
Chainpoint receipts, and the stand-alone verifier.

- ``facts.json`` / :mod:`.facts`: every fact of the format, stated once (record keys, kinds,
  chains, default nodes, step names, verdicts, exit codes, limits);
- :mod:`.receipt`: canonical JSON, the only leaf function, proofs, building a receipt;
- :mod:`.tsa`: RFC 3161 time-stamp tokens, checked offline;
- :mod:`.verify`: the verifier (claims, checks, the JSON-RPC client, report, command);
- :mod:`.errors`: the one error hierarchy, under :class:`~.errors.ProofError`.

The contracts are docs/receipt.md and docs/verification.md. Imports nothing else of
trialnotary (a test enforces it): it is what a reviewer installs, and everything else builds
on it, never the other way round. It needs only the base install's packages
(``pip install trialnotary``; tests/test_layers.py); building trees is the notary's
(:mod:`trialnotary.notary.merkle`).
"""
