"""A reorganisation of the administrative units applied to a running system (issue 22):
the official conversion of 1 July 2025 (two levels, merged provinces) read from the
vietnam-provinces package, a plan that a person reads first (`plan.py`, a dry run), and
its application in steps that can be interrupted and run again (`apply.py`)."""
