"""The national level's read-only view of the province (the central source information
system): areas, stations, e-boards, bulletins, schedules, broadcast logs, statistics."""
