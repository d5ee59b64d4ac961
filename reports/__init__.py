"""Statistics and reports: what aired where, and how much of the fleet worked."""
