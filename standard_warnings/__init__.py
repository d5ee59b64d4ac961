"""The province's standard warnings (storm levels, flood, fire, evacuation): recorded
once, held by every cluster ahead of need, aired by id (docs/protocol.md 11.1)."""
