"""Live voice: an officer speaks, every targeted cluster plays it as it is spoken."""
