"""The device protocol (MQTT 5), version 1: topics, payloads and their limits.

Pure module: standard library and pydantic only, imported by both the control plane and
the simulator. docs/protocol.md is the normative prose; this module is its code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

PROTOCOL_VERSION = 1
TOPIC_ROOT = "bc/v1"
QOS = 1  # every message: at-least-once, deduplicated by id at the receiver

MAX_PAYLOAD_BYTES = 64 * 1024  # what every v1 device parses; an inline clip stays within it
# The largest clip a play carries in the command itself (`media.data`, base64: 4/3 of
# it, 61,440 characters), so the whole signed command stays within MAX_PAYLOAD_BYTES and
# a device that predates inline clips still parses it and downloads (docs/protocol.md 4.2).
INLINE_MAX_BYTES = 45 * 1024
MAX_SCHEDULE_BYTES = 512 * 1024  # two days of a busy cluster's plays, with URLs
CODE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
Code = Annotated[str, Field(pattern=CODE_PATTERN)]


class CommandClass(StrEnum):
    EMERGENCY = "emergency"
    PRIORITY = "priority"
    NORMAL = "normal"


CLASS_RANK = {CommandClass.EMERGENCY: 3, CommandClass.PRIORITY: 2, CommandClass.NORMAL: 1}


class SenderLevel(StrEnum):
    CENTRAL = "central"
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


LEVEL_RANK = {
    SenderLevel.CENTRAL: 4,
    SenderLevel.PROVINCE: 3,
    SenderLevel.DISTRICT: 2,
    SenderLevel.COMMUNE: 1,
}


class CommandKind(StrEnum):
    PLAY = "play"  # play media or relay a stream
    CANCEL = "cancel"  # stop a broadcast, also mid-playback
    PROBE = "probe"  # answer "received" at once; measures the bare round trip
    # Device operations for technicians (section 4.6): `op` carries the parameters.
    SET_VOLUME = "set_volume"
    AMPLIFIER = "amplifier"
    REBOOT = "reboot"
    TEST_TONE = "test_tone"
    TUNE_FM = "tune_fm"
    REPORT_STATUS = "report_status"
    SELF_TEST = "self_test"  # the silent daily check (section 4.6)
    FIRMWARE_UPDATE = "firmware_update"  # one step of a staged rollout (section 4.7)
    SET_AREAS = "set_areas"  # the device's areas changed (a reorganisation, section 4.6)
    # Fetch and verify `media` now and hold it until `expires_at`, unanswered: the duty
    # officer is still reading the confirmation, and the play that follows finds it held
    # (section 4.2).
    STAGE = "stage"


OPERATION_KINDS = frozenset(
    {
        CommandKind.SET_VOLUME,
        CommandKind.AMPLIFIER,
        CommandKind.REBOOT,
        CommandKind.TEST_TONE,
        CommandKind.TUNE_FM,
        CommandKind.REPORT_STATUS,
        CommandKind.SELF_TEST,
        CommandKind.FIRMWARE_UPDATE,
        CommandKind.SET_AREAS,
    }
)


class SignatureProblem(StrEnum):
    """Why a device refuses a signed payload; the `reason` of its `rejected` ack."""

    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"


class AckStage(StrEnum):
    RECEIVED = "received"  # command verified and media ready (downloaded, sha256 checked)
    PLAYING = "playing"
    PLAYED = "played"
    FAILED = "failed"  # with reason
    REJECTED = "rejected"  # with reason: expired, malformed, unsupported version, ...
    PREEMPTED = "preempted"  # cut off by a higher-priority broadcast
    CANCELED = "canceled"  # stopped (or dropped before playing) by a cancel command
    DONE = "done"  # a device operation carried out (section 4.6)


# --- topics -----------------------------------------------------------------------------


def cluster_command_topic(cluster_code: str) -> str:
    return f"{TOPIC_ROOT}/cluster/{cluster_code}/cmd"


def area_command_topic(area_code: str) -> str:
    return f"{TOPIC_ROOT}/area/{area_code}/cmd"


def ack_topic(cluster_code: str) -> str:
    return f"{TOPIC_ROOT}/cluster/{cluster_code}/ack"


def status_topic(cluster_code: str) -> str:
    return f"{TOPIC_ROOT}/cluster/{cluster_code}/status"


def heartbeat_topic(cluster_code: str) -> str:
    return f"{TOPIC_ROOT}/cluster/{cluster_code}/hb"


# What a device names a play from its stored schedule (in heartbeats' `playing`): the item
# id behind this prefix, since no broadcast stands for it yet (section 11).
LOCAL_PLAY_PREFIX = "local:"
# A device's MQTT session outlives a dropped link by this long: what is published to it
# meanwhile waits at the broker and arrives the moment it reconnects (docs/protocol.md 1).
DEVICE_SESSION_EXPIRY_S = 600
KEYS_TOPIC = f"{TOPIC_ROOT}/keys"  # retained KeySet: the public keys every device trusts


def schedule_topic(cluster_code: str) -> str:
    """Retained: the cluster's next hours of schedule (ScheduleDoc)."""
    return f"{TOPIC_ROOT}/cluster/{cluster_code}/schedule"


ACK_FILTER = f"{TOPIC_ROOT}/cluster/+/ack"
STATUS_FILTER = f"{TOPIC_ROOT}/cluster/+/status"
HEARTBEAT_FILTER = f"{TOPIC_ROOT}/cluster/+/hb"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: each message goes to one member of the group."""
    return f"$share/{group}/{topic_filter}"


def cluster_code_from_topic(topic: str) -> str | None:
    """The cluster code of bc/v1/cluster/{code}/{leaf}, or None for any other topic."""
    parts = topic.split("/")
    if len(parts) == 5 and f"{parts[0]}/{parts[1]}" == TOPIC_ROOT and parts[2] == "cluster":
        return parts[3]
    return None


# --- payloads ---------------------------------------------------------------------------


class _Message(BaseModel):
    # NaN and Infinity are not numbers a device can measure (JSON parsers accept them).
    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, allow_inf_nan=False
    )

    v: Literal[1] = 1


class MediaRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str  # signed for the command's target (wire.media_auth)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: int
    duration_ms: int
    format: str = "mp3"
    profile: str | None = None  # the delivery profile this rendition was made for
    # The rendition's bytes, base64 (RFC 4648 section 4, padded), when they are small
    # enough to ride in the command (INLINE_MAX_BYTES): a device that finds their sha256
    # matching holds the file without a download; otherwise it fetches `url`.
    data: Annotated[str, Field(max_length=MAX_PAYLOAD_BYTES)] | None = None
    # The same audio rendered for other device models; a device whose provisioned profile
    # is listed plays that one instead.
    alternates: tuple[MediaRef, ...] = ()

    def for_profile(self, profile: str | None) -> MediaRef:
        return next((a for a in self.alternates if a.profile == profile), self)

    def inline_bytes(self) -> bytes | None:
        """The bytes carried in the command if they are exactly the file named by
        `sha256`; None if there are none, or they are not valid base64, or they do not
        match (the device then downloads `url`, docs/protocol.md 4.2)."""
        if self.data is None:
            return None
        try:
            raw = base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw if hashlib.sha256(raw).hexdigest() == self.sha256 else None


def inline_data(raw: bytes) -> str:
    """`media.data` for a file's bytes."""
    return base64.b64encode(raw).decode("ascii")


class StreamRef(BaseModel):
    """A live stream to relay (an Icecast mount): connect at `starts_at` (absent: at once),
    stop at `ends_at` (absent: when the command expires). `live`: a person speaking now
    (docs/protocol.md 4.4.1): the stream's own clean end is the end of the play, and its
    URL carries a grant the device proves itself to, as for media."""

    model_config = ConfigDict(frozen=True)

    url: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    live: bool | None = None  # absent on the wire unless true (older devices never see it)


class DisplayStyle(StrEnum):
    EMERGENCY = "emergency"  # red full-screen banner, flashing
    PRIORITY = "priority"  # amber banner
    NORMAL = "normal"


class Display(BaseModel):
    """What an e-board shows for the broadcast, for how long, in which style."""

    model_config = ConfigDict(frozen=True)

    title: str
    body: str = ""
    image: MediaRef | None = None
    duration_s: Annotated[int, Field(ge=1, le=86_400)]
    style: DisplayStyle = DisplayStyle.NORMAL
    language: str = "vi"


class FirmwareManifest(BaseModel):
    """What a firmware image is, signed (`sig`, section 9) when it was released. A
    cluster checks the signature against the keys it trusts, then the downloaded bytes
    against `sha256` and `size`, before it installs anything (section 4.7)."""

    model_config = ConfigDict(frozen=True)

    version: Annotated[str, Field(min_length=1, max_length=64)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=1)]
    model: str | None = None  # hardware model it is built for; None: every model
    sig: str


class OperationParams(BaseModel):
    """What a device operation needs (section 4.6). Integers only: signed payloads carry no
    floating-point numbers (section 9)."""

    model_config = ConfigDict(frozen=True)

    volume: Annotated[int, Field(ge=0, le=100)] | None = None  # set_volume
    on: bool | None = None  # amplifier
    seconds: Annotated[int, Field(ge=1, le=60)] | None = None  # test_tone
    frequency_khz: Annotated[int, Field(ge=87_500, le=108_000)] | None = None  # tune_fm
    # firmware_update: the image's signed manifest, and where to fetch the image.
    firmware: FirmwareManifest | None = None
    url: str | None = None
    # set_areas: the area codes from the province down (subscribe to these first, then
    # leave the others) and the media key that goes with them (section 4.2).
    areas: Annotated[list[Code], Field(min_length=1, max_length=16)] | None = None
    media_key: Annotated[str, Field(max_length=128)] | None = None


class Target(BaseModel):
    """Whom a command was published to; a cluster checks that it is one of them."""

    model_config = ConfigDict(frozen=True)

    area: Code | None = None
    cluster: Code | None = None


class Command(_Message):
    """Control plane to cluster, on a cluster or area command topic."""

    id: str
    kind: CommandKind
    broadcast: str
    cls: CommandClass = Field(alias="class")
    level: SenderLevel = SenderLevel.PROVINCE
    issued_at: datetime
    expires_at: datetime
    target: Target
    title: str = ""
    media: MediaRef | None = None
    stream: StreamRef | None = None
    display: Display | None = None  # for e-boards; speaker clusters ignore it
    item: str | None = None  # the schedule item this play is (section 11)
    op: OperationParams | None = None  # device operations (section 4.6)
    # Play no earlier than this (device clock): a scheduled play is sent ahead of its slot,
    # so every cluster of a province starts on the second (section 4.1).
    starts_at: datetime | None = None
    repeat: Annotated[int, Field(ge=1, le=100)] = 1
    # "{kid}.{Ed25519 signature}" over the canonical payload (docs/protocol.md section 9;
    # wire.signing); devices refuse commands without a valid one.
    sig: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


def _device_time(value: datetime) -> datetime:
    """A device's clock: with its zone, and a year a database can store; a clock reset to
    1970 is a fault to report (clock drift), not a message to refuse."""
    if value.tzinfo is None:
        raise ValueError("give the time zone (UTC: …Z)")
    if not DEVICE_YEARS[0] <= value.astimezone(UTC).year <= DEVICE_YEARS[1]:
        raise ValueError(f"year outside {DEVICE_YEARS[0]}-{DEVICE_YEARS[1]}")
    return value


DEVICE_YEARS = (1970, 2200)
DeviceTime = Annotated[datetime, AfterValidator(_device_time)]
# No NUL in any text: PostgreSQL cannot store it, and no device means it.
_NO_NUL = r"^[^\x00]*$"
Id = Annotated[str, Field(max_length=100, pattern=_NO_NUL)]  # command, broadcast ids
Text = Annotated[str, Field(max_length=300, pattern=_NO_NUL)]  # a reason
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]  # what a 64-bit column holds


class Ack(_Message):
    """Cluster to control plane: the application-level acknowledgement of one command."""

    cmd: Id
    broadcast: Id
    cluster: Code
    stage: AckStage
    at: DeviceTime
    reason: Text | None = None
    # A play from the stored schedule, reported when the link is back (section 11): `cmd`
    # and `broadcast` are empty, `item` names it, `at` is when it started.
    item: Annotated[str, Field(max_length=200, pattern=_NO_NUL)] | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Status(_Message):
    """Retained birth message ("online": true) and Last Will ("online": false)."""

    cluster: Code
    online: bool
    fw: Annotated[str, Field(max_length=64, pattern=_NO_NUL)] | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Heartbeat(_Message):
    """Device to control plane, every minute: its health (docs/protocol.md section 3).
    Every field but `cluster` and `at` is optional: a device sends what it can measure."""

    cluster: Code
    at: DeviceTime  # the device's clock: the control plane derives the clock offset from it
    seq: Count = 0
    playing: Id | None = None  # broadcast id
    volume: Annotated[int, Field(ge=0, le=100)] | None = None
    rssi: Annotated[int, Field(ge=-200, le=0)] | None = None  # dBm of the 4G link, e.g. -71
    link_quality: Annotated[int, Field(ge=0, le=100)] | None = None  # where no RSSI
    # mains voltage, or the DC backup's on battery
    supply_v: Annotated[float, Field(ge=0, le=1000)] | None = None
    power: Literal["mains", "battery"] | None = None  # battery: the DC backup input
    amp_on: bool | None = None  # amplifier relay
    amp_temp_c: Annotated[float, Field(ge=-60, le=300)] | None = None
    speakers: Annotated[int, Field(ge=0, le=64)] | None = None  # lines the amplifier drives
    # lines (1-based) open or shorted
    speaker_faults: Annotated[
        tuple[Annotated[int, Field(ge=1, le=64)], ...], Field(max_length=64)
    ] = ()
    relay_trip: Literal["overvoltage", "undervoltage", "phase_loss"] | None = None
    uptime_s: Count | None = None
    fw: Annotated[str, Field(max_length=64, pattern=_NO_NUL)] | None = None
    schedule_version: Count | None = None  # the ScheduleDoc version it holds
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class ScheduleItem(BaseModel):
    """One play of the cluster's schedule, with everything needed to play it offline."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str  # "{schedule}@{slot unix seconds}"; the fired broadcast's command names it too
    starts_at: datetime
    expires_at: datetime
    cls: CommandClass = Field(alias="class")
    level: SenderLevel = SenderLevel.COMMUNE
    title: str = ""
    media: MediaRef | None = None
    stream: StreamRef | None = None
    display: Display | None = None


class HeldWarning(BaseModel):
    """One of the province's standard warnings (storm, flood, fire, evacuation) that every
    cluster keeps, so an emergency naming it finds it held (docs/protocol.md 11.1)."""

    model_config = ConfigDict(frozen=True)

    id: Code  # the library's id ("flood-evacuate"), for the self-test's report
    title: str = ""
    media: MediaRef  # signed for the cluster until the document's valid_until


def warning_not_held(warning_id: str) -> str:
    """The self-test's `failed` reason when a listed warning is missing or damaged and
    could not be fetched again (docs/protocol.md 11.1); the control plane then pushes the
    cluster a new document, with fresh grants."""
    return f"{WARNING_NOT_HELD_PREFIX}{warning_id} not held"


WARNING_NOT_HELD_PREFIX = "standard warning "


class ScheduleDoc(_Message):
    """Control plane to cluster, retained on its schedule topic: the next hours of plays,
    and the standard warnings to keep. A device keeps the highest version it has seen and
    reports it in heartbeats."""

    cluster: Code
    version: int
    generated_at: datetime
    valid_until: datetime
    items: tuple[ScheduleItem, ...] = ()
    # Empty in a province with no standard warnings; a device that predates them ignores
    # the member (section 8) and downloads a warning when it is sent, as any clip.
    warnings: tuple[HeldWarning, ...] = ()
    sig: str | None = None  # as on commands


class KeySet(_Message):
    """Control plane to every device, retained on KEYS_TOPIC: the public keys to trust.
    Signed by a key the device already trusts; a device takes only a higher version."""

    version: int
    issued_at: datetime
    keys: tuple[str, ...]  # Ed25519 public keys, base64url
    sig: str | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class ProtocolError(ValueError):
    """A payload that is not a valid v1 message; the text says why."""


def parse_command(payload: bytes) -> Command:
    return _validated(Command, payload)


def parse_ack(payload: bytes) -> Ack:
    return _validated(Ack, payload)


def parse_status(payload: bytes) -> Status:
    return _validated(Status, payload)


def parse_heartbeat(payload: bytes) -> Heartbeat:
    return _validated(Heartbeat, payload)


def parse_schedule(payload: bytes) -> ScheduleDoc:
    return _validated(ScheduleDoc, payload)


def parse_keyset(payload: bytes) -> KeySet:
    return _validated(KeySet, payload)


def parse_signed[M: BaseModel](model: type[M], payload: bytes) -> tuple[M, dict[str, Any]]:
    """A message and the JSON object it came from, whose signature the caller checks
    (wire.signing covers the object as received, not a re-serialisation)."""
    _check_size(model, payload)
    try:
        obj = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"payload: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("payload: not a JSON object")
    try:
        return model.model_validate(obj), obj
    except ValidationError as exc:
        raise _protocol_error(exc) from None


def _check_size(model: type[BaseModel], payload: bytes) -> None:
    limit = MAX_SCHEDULE_BYTES if model is ScheduleDoc else MAX_PAYLOAD_BYTES
    if len(payload) > limit:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {limit}")


def _protocol_error(exc: ValidationError) -> ProtocolError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
    return ProtocolError(f"{where}: {first.get('msg')}")


def _validated[M: BaseModel](model: type[M], payload: bytes) -> M:
    _check_size(model, payload)
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise _protocol_error(exc) from None


def wire_object(message: BaseModel) -> dict[str, Any]:
    """A message as the JSON object that goes on the wire (then signed)."""
    return message.model_dump(mode="json", by_alias=True, exclude_none=True)


def item_id(schedule_id: str, slot: datetime) -> str:
    """A schedule item's name, in the pushed schedule and in the command that fires it:
    "{schedule}@{slot, Unix seconds}"."""
    return f"{schedule_id}@{int(slot.timestamp())}"


def parse_item(item: str) -> tuple[str, datetime] | None:
    """(schedule id, slot) of an item id, or None if it is not one."""
    schedule_id, _, stamp = item.partition("@")
    try:
        return schedule_id, datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError):
        return None


def message_expiry_s(expires_at: datetime, now: datetime) -> int:
    """MQTT 5 Message Expiry Interval for a command (at least 1 s; 0 would mean never)."""
    return max(1, int((expires_at - now).total_seconds()))


def utc_now() -> datetime:
    return datetime.now(UTC)
