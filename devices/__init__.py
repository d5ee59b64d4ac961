"""Device registry and the device protocol.

This package's __init__ stays empty on purpose: the simulator imports
devices.protocol and must not pull in SQLAlchemy through it.
"""
