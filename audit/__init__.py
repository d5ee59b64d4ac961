"""The append-only audit log: who did what, where and when, from which address, and how it ended."""
