"""Fleet health for technicians: telemetry, link state, rollups (docs/protocol.md section 3)."""
