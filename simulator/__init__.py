"""Simulated loudspeaker clusters speaking only the device protocol (no database)."""
