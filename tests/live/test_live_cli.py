"""`broadcast live` as a field officer runs it, without a browser: a file in, through the
API with a bearer token, over the same WebSocket as the console."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from devstack.synth import tone
from simulator.fleet import Fleet
from tests.factories import small_province
from tests.live.helpers import COMMUNE, ended
from tests.security.helpers import make_user, signed_in
from tests.support import Stack, counts


async def test_broadcast_live_speaks_a_file_to_the_commune(
    stack: Stack, fleet_factory: Callable[..., Fleet], audio_dir: Path
) -> None:
    speech = tone(audio_dir / "cli-1.5s.ogg", 1.5, source="sine=frequency=440")
    specs = (await small_province(stack)).speakers(COMMUNE)
    fleet = fleet_factory(specs)
    await fleet.start()
    await make_user(stack, "truc.ban", role="province_officer")
    env = {**os.environ, "BROADCAST_TOKEN": await signed_in(stack, "truc.ban")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "live", "--area", COMMUNE, "--class", "emergency",
        "--input", str(speech), "--api", stack.settings.public_base_url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    broadcast_id = out.decode().split("broadcast ", 1)[1].split()[0]
    assert "ended: ended by truc.ban" in out.decode(), out.decode()
    done = await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == len(specs))
    assert done["sent_by"] == "truc.ban" and done["class"] == "emergency"
    record = await ended(stack, broadcast_id)
    assert abs(record["recorded_ms"] - 1500) <= 500, record
