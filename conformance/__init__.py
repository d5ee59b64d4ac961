"""The conformance kit for vendors (`broadcast conformance`): kit.py runs the checks,
one module per part of docs/protocol.md holds them."""
