"""Common Alerting Protocol (CAP 1.2, OASIS): alerts in from national agencies and
weather services, broadcasts out as CAP, delivery outcomes reported upstream as Acks."""
