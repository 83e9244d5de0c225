"""The notary core: registrations, sealing them into Merkle trees, anchoring the roots on
chain, receipts, the scheduler's jobs and the consistency checks. Knows nothing of Flask."""
