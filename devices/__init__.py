"""Device registry: clusters, their broker accounts and their messages in.

The wire format the devices speak is the `wire` package, below this one.
"""
