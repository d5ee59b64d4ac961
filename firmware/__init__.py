"""Firmware images and staged rollouts (docs/protocol.md section 4.7)."""
