"""People and their trials: trials and sites, accounts and sign-in, the access policy, site
and user tokens, and the hash-chained audit trail. Knows nothing of Flask."""
