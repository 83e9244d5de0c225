"""The notary core: registrations, sealing them into Merkle trees, anchoring the roots on
chain, receipts, the scheduler's jobs and the consistency checks. Knows nothing of Flask.

- ``registrations/``: registering, idempotent retries, corrections, look-ups;
- ``batches`` seals pending registrations; ``trees`` keeps their trees and reads proofs;
  ``receipts`` assembles receipts; ``driver`` runs the hottest reads on the driver;
- ``anchoring`` runs a round (``sending``: sign and send; ``following``: what the chain
  did) and the jobs; ``chain`` is the node client; ``scheduler`` runs the jobs;
- ``consistency`` and ``audit_check``: the checks; ``overview``: what the pages show;
- ``models``, ``states``, ``errors``: the tables, the states, the exceptions.
"""
