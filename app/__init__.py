"""The control plane's composition root: the HTTP API, the runtime's wiring and jobs,
the scheduler process and the `broadcast` command."""
