from tests.security.broker import locked_broker

__all__ = ["locked_broker"]
