"""Broadcasts and their per-cluster deliveries: the emergency path."""
