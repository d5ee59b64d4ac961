"""People: accounts, passwords, sign-in sessions and API tokens, lock-out."""
