"""People and their trials: trials and sites (``sites``), accounts and grants (``accounts``),
passwords (``passwords``), sign-in and its throttling (``signin``), browser sessions and
secrets shown once (``sessions``), user tokens (``user_tokens``), the access policy
(``access``), what the admin pages list (``directory``), and the hash-chained audit trail
(``audit``); their tables (``models``), named values (``states``) and errors (``errors``).
Knows nothing of Flask."""
