"""A simulated cluster's remote operations (docs/protocol.md 4.6, 4.7): volume, amplifier,
FM, test tone, reboot, self-test, firmware install, new areas."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from simulator.downloads import Downloads
from wire import protocol
from wire.mqtt_lite import MqttLiteError
from wire.protocol import (
    AckStage,
    Command,
    CommandKind,
    FirmwareManifest,
    MediaRef,
    OperationParams,
)
from wire.signing import SignatureError, TrustStore


class Operations(Downloads):
    async def _operate(self, command: Command, raw: dict[str, Any]) -> None:
        """A technician's remote command (docs/protocol.md 4.6): carry it out, report the
        new state in a heartbeat, answer `done`, or `failed` with the reason."""
        op, kind, state = command.op or OperationParams(), command.kind, self.condition
        failure: str | None = None
        if kind is CommandKind.SET_VOLUME and op.volume is not None:
            self.volume = op.volume
        elif kind is CommandKind.AMPLIFIER and op.on is not None:
            if state.amp_dead:
                failure = "amplifier does not answer"
            else:
                state.amp_on = op.on
        elif kind is CommandKind.TUNE_FM and op.frequency_khz is not None:
            self.fm_khz = op.frequency_khz
        elif kind is CommandKind.TEST_TONE:
            if state.amp_dead or not state.amp_on:
                failure = "amplifier off or not answering"
            else:
                await asyncio.sleep((op.seconds or 3) / self.env.time_compression)
                self.test_tones += 1
        elif kind is CommandKind.REBOOT:
            self._booted = time.monotonic()
            self.reboots += 1
            self.drop_link()  # back within a reconnect, then it answers
            self.online.clear()
            await self.online.wait()
        elif kind is CommandKind.SELF_TEST:
            failure = await self._self_check(command)
        elif kind is CommandKind.FIRMWARE_UPDATE and op.firmware is not None and op.url:
            failure = await self._install(op.firmware, op.url, raw)
        elif kind is CommandKind.SET_AREAS and op.areas and op.media_key:
            failure = await self._move(tuple(op.areas), op.media_key)
        elif kind is not CommandKind.REPORT_STATUS:
            failure = f"{kind.value}: parameters missing"
        if failure is None:
            self._publish_heartbeat()
            self._ack(command, AckStage.DONE)
        else:
            self._ack(command, AckStage.FAILED, failure)

    async def _move(self, areas: tuple[str, ...], media_key: str) -> str | None:
        """New areas (a reorganisation, docs/protocol.md 4.6): subscribe to their topics
        first and leave the old ones only then, so no moment is without either; keep them
        (and the key that goes with them) across a reboot."""
        old = self.spec.areas
        joining = [protocol.area_command_topic(a) for a in areas if a not in old]
        leaving = [protocol.area_command_topic(a) for a in old if a not in areas]
        try:
            refused = await self.client.subscribe(joining) if joining else []
            if refused:
                return f"subscription refused: {', '.join(refused)}"
            self._areas = set(old) | set(areas)  # both, until the old are left
            self.spec = replace(self.spec, areas=areas, media_key=media_key)
            if leaving:
                await self.client.unsubscribe(leaving)
        except (MqttLiteError, TimeoutError) as exc:
            return f"subscriptions not changed: {exc}"
        self._areas = set(areas)
        return None

    async def _install(self, image: FirmwareManifest, url: str, raw: dict[str, Any]) -> str | None:
        """What a device must do before it installs (docs/protocol.md 4.7): the manifest
        signed by a key it trusts, for its model, then the bytes fetched and matched
        against it. Then install, reboot, and come back on the new version; an image that
        does not boot is rolled back and reported."""
        manifest = (raw.get("op") or {}).get("firmware")  # as received, as signed
        try:
            # Firmware keys only: the key that signs commands never vouches for an image.
            TrustStore(self.spec.firmware_keys).check(
                manifest if isinstance(manifest, dict) else {}
            )
        except SignatureError as exc:
            return f"firmware signature refused: {exc.problem.value}"
        if image.model and self.spec.model and image.model != self.spec.model:
            return f"firmware is for {image.model}, this is {self.spec.model}"
        if image.version == self.firmware:
            return None  # already installed (a re-sent command after the reboot)
        ref = MediaRef(url=url, sha256=image.sha256, size=image.size, duration_ms=0, format="bin")
        failure = await self._fetch(ref, fresh=True)
        if failure is not None:
            return failure.replace("media", "firmware", 1)
        self._media_cache.pop(image.sha256, None)  # written to flash, not kept in memory
        faults = self.env.faults
        if self.condition.install_fails or (
            faults.firmware_failure and self.env.rng.random() < faults.firmware_failure
        ):
            return f"firmware {image.version} did not boot; rolled back to {self.firmware}"
        self.firmware = image.version
        self.installs.append(image.version)
        self._booted = time.monotonic()
        self.reboots += 1
        self.drop_link()
        self.online.clear()
        await self.online.wait()
        return None

    async def _self_check(self, command: Command) -> str | None:
        """Everything an emergency needs, without a sound: the command verified (it got
        here), the clip fetched afresh and checked, the amplifier answering, its lines
        and relay sound, the standard warnings held (protocol 11.1). The first thing
        wrong, or None."""
        state = self.condition
        if command.media is not None and self.spec.kind != "eboard":
            failure = await self._fetch(command.media.for_profile(self.spec.profile), fresh=True)
            if failure is not None:
                return failure
        if self.spec.kind == "eboard":
            return None  # a screen: verified and reachable is what it can show
        if state.amp_dead:
            return "amplifier does not answer"
        if not state.amp_on:
            return "amplifier switched off"
        if state.relay_trip:
            return f"protection relay tripped ({state.relay_trip})"
        if state.speaker_faults:
            return f"speaker line(s) {', '.join(map(str, state.speaker_faults))} open or shorted"
        return await self._check_warnings()
