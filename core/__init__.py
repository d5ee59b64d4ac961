"""Shared infrastructure: settings, database, MQTT client, errors, clock."""
