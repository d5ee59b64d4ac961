"""Schedules: recurring and one-off broadcasts of approved bulletins, fired by the scheduler."""
