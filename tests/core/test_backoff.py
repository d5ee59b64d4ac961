from core.backoff import resend_delay_s
from core.settings import Settings


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    settings = Settings(resend_base_s=2.0, resend_cap_s=30.0)
    delays = [resend_delay_s(attempts, settings) for attempts in range(0, 8)]
    assert delays == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_the_cap_holds_however_many_sends() -> None:
    settings = Settings(resend_base_s=2.0, resend_cap_s=30.0)
    assert resend_delay_s(10_000, settings) == 30.0
