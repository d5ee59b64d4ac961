"""The wire format: what a vendor's device needs to talk to the control plane.

The protocol's messages and topics (`protocol`), command signatures (`signing`), signed
media URLs (`media_auth`), the lean MQTT client (`mqtt_lite`) and the delivery profiles
(`delivery`). The bottom layer: it imports nothing of the project (tests/test_layers.py),
so the simulator, and a vendor reading docs/protocol.md, need nothing above it. This
__init__ stays empty on purpose.
"""
