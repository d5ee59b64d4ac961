"""The control plane application: HTTP API, runtime wiring, CLI, demo and load test."""
