"""The benchmarks (`broadcast loadtest…`): the whole stack measured in separate processes,
results as JSON, HTML and PNG (docs/benchmarks.md). Its own dependencies: `pip install
.[bench]`; nothing in production imports it."""
