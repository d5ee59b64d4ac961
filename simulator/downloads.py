"""A simulated cluster's downloads: media and firmware fetched with its own credentials,
checked against their sha256, retried while a failure may pass."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

from simulator import http_lite
from simulator.state import ClusterState
from wire import media_auth
from wire.protocol import Command, HeldWarning, MediaRef, warning_not_held

# A download that fails for a passing reason (no connection, a timeout, HTTP 5xx or 429)
# is tried again, backing off, until the command's validity ends (docs/protocol.md 4.1).
DOWNLOAD_RETRY_BASE_S = 0.5
DOWNLOAD_RETRY_CAP_S = 15.0
SHA256_MISMATCH = "media sha256 mismatch"
NOTHING_TO_PLAY = "nothing to play"  # a display-only play reaching a speaker (protocol 4.5)


class Downloads(ClusterState):
    async def _fetch_media(self, command: Command) -> str | None:
        """Download and verify what this device needs; the reason on failure. Speakers
        fetch the audio (streams are opened when playing); e-boards fetch the image."""
        if self.spec.kind == "eboard":
            image = command.display.image if command.display else None
            return await self._fetch(image, until=command.expires_at) if image else None
        if command.media is None:
            # A display-only play is for screens (protocol 4.5); a speaker has nothing to say.
            return None if command.stream is not None else NOTHING_TO_PLAY
        media = command.media.for_profile(self.spec.profile)
        if media.data is not None and not self._holds(media.sha256):
            raw = self.env.inline_bytes(media)
            if raw is not None and not self._inline_corrupt():
                self._media_cache[media.sha256] = raw
                self.inline_held += 1
                return None
            # Not the file the command names: refused, and fetched from its URL (4.2).
            self.inline_refused += 1
        return await self._fetch(media, until=command.expires_at)

    def _inline_corrupt(self) -> bool:
        """The fault `media_corrupt` spoils an inline copy as it does a download's."""
        share = self.env.faults.media_corrupt
        return bool(share) and self.env.rng.random() < share

    def _stage(self, command: Command) -> None:
        """Fetch and verify the clip now and hold it until the command expires, without a
        word (protocol 4.2): the play that follows finds it held. A clip this device held
        already stays held as before."""
        media = command.media
        if self.spec.kind == "eboard" or media is None:
            return
        chosen = media.for_profile(self.spec.profile)
        if self._holds(chosen.sha256):
            return
        self.stages_heard += 1

        async def hold() -> None:
            if await self._fetch(chosen, until=command.expires_at) is None:
                self._staged[chosen.sha256] = command.expires_at
                left = (command.expires_at - self.clock()).total_seconds()
                asyncio.get_running_loop().call_later(
                    max(0.0, left), self._drop_staged, chosen.sha256
                )

        task = asyncio.create_task(hold())
        self._operations.add(task)  # kept referenced until done; stopped with the device
        task.add_done_callback(self._operations.discard)

    def _hold_warnings(self, warnings: tuple[HeldWarning, ...], until: datetime) -> None:
        """The standard warnings of a document just taken (protocol 11.1): each one not
        held is fetched in the background (retried until the document's `valid_until`),
        and every listed file is held from now on, a staged copy included."""
        self.warnings = {w.id: w for w in warnings}
        if self.spec.kind == "eboard":
            return  # a screen shows the title; it needs no audio
        for warning in warnings:
            chosen = warning.media.for_profile(self.spec.profile)
            self._staged.pop(chosen.sha256, None)  # no longer dropped at a staging's expiry
            if self._holds(chosen.sha256) or chosen.sha256 in self._downloading:
                continue

            async def fetch(media: MediaRef = chosen) -> None:
                if await self._fetch(media, until=until) is None:
                    self.warnings_fetched += 1

            task = asyncio.create_task(fetch())
            self._operations.add(task)  # kept referenced until done; stopped with the device
            task.add_done_callback(self._operations.discard)

    async def _check_warnings(self) -> str | None:
        """The self-test's part for the standard warnings (protocol 11.1): every listed
        file present and still matching its sha256, a missing or damaged one fetched again
        (one attempt); the reason for the first that cannot be."""
        for warning_id, warning in sorted(self.warnings.items()):
            chosen = warning.media.for_profile(self.spec.profile)
            held = self._media_cache.get(chosen.sha256)
            if held is not None and hashlib.sha256(held).hexdigest() == chosen.sha256:
                continue
            self._media_cache.pop(chosen.sha256, None)
            if await self._fetch(chosen, fresh=True) is not None:
                return warning_not_held(warning_id)
            self.warnings_fetched += 1
        return None

    def _pinned(self, sha256: str) -> bool:
        return any(
            w.media.for_profile(self.spec.profile).sha256 == sha256 for w in self.warnings.values()
        )

    def _holds(self, sha256: str) -> bool:
        """Whether the file is held, a staged copy only until its staging expires."""
        staged_until = self._staged.get(sha256)
        if staged_until is not None and staged_until <= self.clock():
            self._drop_staged(sha256)
        return sha256 in self._media_cache

    def _drop_staged(self, sha256: str) -> None:
        """A staged clip no play used by its expiry is dropped."""
        until = self._staged.get(sha256)
        if until is not None and until <= self.clock():
            del self._staged[sha256]
            if not self._pinned(sha256):  # a standard warning listed since is kept
                self._media_cache.pop(sha256, None)
            self.stages_expired += 1

    async def _fetch(
        self, media: MediaRef, *, fresh: bool = False, until: datetime | None = None
    ) -> str | None:
        """Download and verify; the reason on failure. `fresh`: even if held (a test of
        the download path itself). `until`: passing failures are retried until then (a
        corrupted copy once); without it, one attempt (the self-test reports the first).
        A play whose clip is still being fetched for its staging waits for that download
        instead of starting a second."""
        if not fresh:
            if self._holds(media.sha256):
                self._staged.pop(media.sha256, None)  # a play uses it: held as any other
                return None
            if (running := self._downloading.get(media.sha256)) is not None:
                await asyncio.shield(running)
                if self._holds(media.sha256):
                    self._staged.pop(media.sha256, None)
                    return None
            task = asyncio.create_task(self._fetch_retrying(media, until))
            self._downloading[media.sha256] = task
            task.add_done_callback(lambda _: self._downloading.pop(media.sha256, None))
            return await asyncio.shield(task)
        return await self._fetch_retrying(media, until)

    async def _fetch_retrying(self, media: MediaRef, until: datetime | None) -> str | None:
        delay, mismatches = DOWNLOAD_RETRY_BASE_S, 0
        while True:
            failure, passing = await self._download(media)
            if failure is None:
                return None
            if failure == SHA256_MISMATCH:
                mismatches += 1
                passing = mismatches < 2  # damaged on the way once; twice is the file
            if not passing or until is None or self.clock() + timedelta(seconds=delay) >= until:
                return failure
            self.download_retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, DOWNLOAD_RETRY_CAP_S)

    async def _download(self, media: MediaRef) -> tuple[str | None, bool]:
        """One attempt: (the reason it failed or None, whether trying again may help)."""
        spec = self.spec
        url = media_auth.device_url(media.url, code=spec.code, areas=spec.areas, key=spec.media_key)
        self.downloads += 1
        try:
            async with self.env.downloads:
                status, body = await http_lite.get(url, tls=self.env.tls)
        except (OSError, TimeoutError, http_lite.HttpLiteError) as exc:
            return f"media download failed: {exc.__class__.__name__}", True
        if status != 200:
            return f"media download failed: HTTP {status}", status >= 500 or status == 429
        if self.env.faults.media_corrupt and self.env.rng.random() < self.env.faults.media_corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if hashlib.sha256(body).hexdigest() != media.sha256:
            return SHA256_MISMATCH, True
        self._media_cache[media.sha256] = body
        return None, False
