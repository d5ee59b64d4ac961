"""HTML to PDF with headless Chromium: the printed report is the page people see, laid
out by the browser's own print engine (A4, fonts with Vietnamese marks, SVG charts), so
there is one layout to keep right instead of a second one in a PDF library.

Chromium runs as a child process per print, with its own throwaway profile, and is
killed if it takes longer than `timeout_s`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from core.errors import AppError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PrintingUnavailable(AppError):
    status_code = 503


def find_chromium(configured: str | None) -> str:
    if configured:
        return configured
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PrintingUnavailable(
        "printing to PDF needs Chromium on this server (install it or set "
        "BROADCAST_REPORT_CHROMIUM); the printable page is at /console/reports/monthly",
        detail={},
    )


async def html_to_pdf(html: str, chromium: str, timeout_s: float = 60.0) -> bytes:
    return await _render(html, chromium, timeout_s, "report.pdf", "--print-to-pdf={out}")


async def html_to_png(
    html: str, chromium: str, *, width: int, height: int, timeout_s: float = 60.0
) -> bytes:
    """The page photographed at `width` x `height` CSS pixels."""
    return await _render(
        html,
        chromium,
        timeout_s,
        "page.png",
        "--screenshot={out}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
    )


async def _render(html: str, chromium: str, timeout_s: float, name: str, *how: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="report-") as folder:
        page, out = Path(folder) / "page.html", Path(folder) / name
        page.write_text(html, encoding="utf-8")
        arguments = [
            "--headless",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={folder}/profile",
            *(h.format(out=out) for h in how),
            page.as_uri(),
        ]
        if os.geteuid() == 0:  # Chromium refuses to sandbox itself as root (containers)
            arguments.insert(0, "--no-sandbox")
        process = await asyncio.create_subprocess_exec(
            chromium,
            *arguments,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, errors = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise PrintingUnavailable(
                f"Chromium did not render the page within {timeout_s:.0f} s", detail={}
            ) from None
        if process.returncode != 0 or not out.exists():
            tail = errors.decode(errors="replace").strip().splitlines()[-3:]
            raise PrintingUnavailable(
                f"Chromium could not render the page: {' / '.join(tail) or process.returncode}",
                detail={},
            )
        return out.read_bytes()
