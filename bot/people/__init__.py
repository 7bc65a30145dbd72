"""People: password hashing, API tokens and the ``leadrelay user`` commands."""
