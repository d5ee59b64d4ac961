"""What several commands share: their common options, the API's address, logging."""

from __future__ import annotations

from typing import Annotated

import typer

ApiOption = Annotated[str | None, typer.Option("--api", help="control plane URL")]
# The simulated fleet's processes (the demo, the screenshots, the load tests).
ProcessesOption = Annotated[int, typer.Option(help="simulator processes")]


def api_url(api: str | None) -> str:
    from core.settings import get_settings

    return api or get_settings().public_base_url


def configure_logging(level: str = "INFO") -> None:
    from core.logs import configure

    configure(level)
