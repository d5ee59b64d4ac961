"""The development stack: what tests, the demo, the benchmarks and the conformance kit
start around the control plane (Mosquitto, a private PostgreSQL, Icecast, generated
audio, the demo province seeded, the processes run). Nothing the control plane serves
with imports it."""
