"""Agent settings: a YAML file, then ``POTR_*`` environment overrides.

Nested fields use ``__`` in environment names (``POTR_MQTT_URL``,
``POTR_ENDPOINTS='[...]'`` as JSON). Unknown keys are refused, naming the field.

Endpoints are Modbus TCP (the default ``transport``) or Modbus RTU::

    endpoints:
      - {name: inverter, host: 192.168.1.20, port: 502, unit_ids: [1]}
      - name: rs485
        transport: rtu
        serial_port: /dev/ttyUSB0
        baudrate: 9600          # required: libraries disagree on the default
        parity: N               # N / E / O
        stopbits: 1
        unit_ids: [1, 2, 5]
        unit_profiles: {5: sim-isolator}   # else SunSpec discovery

The broker link: ``mqtt://`` (plaintext, development only) or ``mqtts://`` (TLS, port
8883 unless given), verified against ``mqtt_ca_file``; the gateway proves who it is
with ``mqtt_username`` + ``mqtt_password`` (``POTR_MQTT_PASSWORD``) or a client
certificate (``mqtt_cert_file`` + ``mqtt_key_file``, the key readable by its owner
only). With ``env: production`` the agent refuses plaintext, a TLS URL without a CA
file, a password written into the URL, and no identity at all.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    FilePath,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from contracts.signing import SignatureError, TrustedKeys
from contracts.topics import GATEWAY_ID_RE, Region
from device_profiles import DeviceProfile, ProfileError, builtin_profiles, load_profiles
from pacing import RECONNECT_MAX_S, RECONNECT_WINDOW_S

#: URL schemes of a plaintext and of a TLS broker link, and their default ports.
PLAIN_SCHEMES = ("mqtt", "tcp")
TLS_SCHEMES = ("mqtts",)
DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883}
#: Largest MQTT packet by default: the regional brokers' ``max_packet_size``
#: (``broker_config.mosquitto.MosquittoConfig``).
MAX_PACKET_BYTES = 256 * 1024


class SettingsError(ValueError):
    """A settings file or value the agent refuses; the message names the field."""


class _Endpoint(BaseModel):
    """What every Modbus endpoint has: a name, its unit ids, a timeout, device profiles."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    unit_ids: list[int] = Field(default_factory=lambda: [1], min_length=1)
    timeout_s: float = Field(default=2.0, gt=0)
    #: Device profile (``device_profiles``) of every unit; None = auto (SunSpec discovery).
    profile: str | None = None
    #: Per-unit profiles, overriding ``profile`` (unit id → profile name).
    unit_profiles: dict[int, str] = Field(default_factory=dict)
    #: Sign of an auto-discovered grid meter's SunSpec W: +1 when it reports import as
    #: positive. A device with a profile takes the signs of the profile's metric mappings.
    meter_import_sign: Literal[1, -1] = 1

    @field_validator("unit_ids")
    @classmethod
    def _unit_range(cls, v: list[int]) -> list[int]:
        for unit in v:
            if not 0 <= unit <= 255:
                raise ValueError(f"unit id {unit} is outside 0..255")
        if len(set(v)) != len(v):
            raise ValueError("unit ids repeat")
        return v

    @model_validator(mode="after")
    def _profiled_units_exist(self) -> Self:
        stray = sorted(set(self.unit_profiles) - set(self.unit_ids))
        if stray:
            raise ValueError(f"unit_profiles names unit ids not in unit_ids: {stray}")
        return self

    def profile_for(self, unit_id: int) -> str | None:
        """The profile name configured for ``unit_id`` (None = SunSpec discovery)."""
        return self.unit_profiles.get(unit_id, self.profile)


class EndpointSettings(_Endpoint):
    """A Modbus TCP endpoint (an inverter, a meter, or a gateway with several units)."""

    transport: Literal["tcp"] = "tcp"
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)


TcpEndpointSettings = EndpointSettings


class RtuEndpointSettings(_Endpoint):
    """A Modbus RTU serial line (RS485) and the unit ids on it; one client per line."""

    transport: Literal["rtu"]
    serial_port: str = Field(min_length=1, description="e.g. /dev/ttyUSB0")
    #: Stated explicitly: pymodbus (19200) and pysunspec2 (9600) default differently.
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


def _transport(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("transport", "tcp"))
    return str(getattr(value, "transport", "tcp"))


#: A Modbus endpoint; ``transport`` (``tcp`` unless given) says which kind.
AnyEndpoint = Annotated[
    Annotated[EndpointSettings, Tag("tcp")] | Annotated[RtuEndpointSettings, Tag("rtu")],
    Discriminator(
        _transport,
        custom_error_type="transport",
        custom_error_message="transport must be 'tcp' or 'rtu'",
    ),
]


class MqttTarget(NamedTuple):
    """Where and as whom the agent connects (the password stays a secret here)."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: SecretStr | None


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POTR_", env_nested_delimiter="__", extra="forbid")

    gateway_id: str = Field(pattern=GATEWAY_ID_RE.pattern)
    region: Region
    #: ``production`` refuses plaintext MQTT and credentials in the URL (module docstring).
    env: Literal["dev", "test", "production"] = "dev"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    #: Never logged or printed; a password given in ``mqtt_url`` (dev/test only) moves here.
    mqtt_password: SecretStr | None = None
    #: A file holding the password (what provisioning writes, 0600): read at every
    #: connect, so a rotated password is picked up at the next reconnect without a
    #: restart (the hand-over in docs/brokers.md). ``mqtt_password`` wins when both are set.
    mqtt_password_file: FilePath | None = None
    #: CA certificate(s), PEM, that the broker's certificate must chain to (``mqtts://``);
    #: none = the system's CAs (refused in production).
    mqtt_ca_file: FilePath | None = None
    #: Client certificate and its private key (PEM): the gateway's identity over TLS.
    mqtt_cert_file: FilePath | None = None
    mqtt_key_file: FilePath | None = None
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    #: A dead link (no FIN, nothing answering) is noticed within 1.5 x this (pings go at
    #: half of it; ``edge_agent.mqtt``); the broker drops a silent gateway after 1.5 x.
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    #: Once asked to stop, the MQTT session has this long to flush and publish the
    #: retained offline state, and the DISCONNECT as long again; on a dead link both are
    #: given up (the broker publishes the will) and unsent rows stay in the buffer. Keep
    #: twice this under the service's stop timeout (30 s in deploy/potr-agent.service).
    mqtt_goodbye_timeout_s: float = Field(default=5.0, gt=0)
    #: Largest MQTT packet to send, topic and headers included: batches are cut to fit.
    #: Under MQTT 5 the broker's own limit (CONNACK) is honoured when it is smaller.
    mqtt_max_packet_bytes: int = Field(default=MAX_PACKET_BYTES, ge=1024, le=268_435_455)
    mqtt_session_expiry_s: int = Field(default=3600, ge=0)
    buffer_path: Path = Path("potr-agent-buffer.sqlite")
    #: Payload bytes the buffer may hold; when full the oldest telemetry goes first.
    buffer_max_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024)
    #: Dropped telemetry is reported in one ``data_dropped`` event per interval, not one
    #: per batch (events are never dropped, so per-batch reports could fill the buffer).
    drop_report_interval_s: float = Field(default=30.0, gt=0)
    poll_interval_s: float = Field(default=5.0, gt=0)
    publish_interval_s: float | None = Field(default=None, gt=0)
    stored_timeout_s: float = Field(default=30.0, gt=0)
    max_inflight: int = Field(default=20, ge=1, le=1000)
    #: Backlog (rows buffered before the current connection) drains through a token
    #: bucket at this many messages per second, with bursts of up to ``backfill_burst``;
    #: live batches, events and acks are never held back by it.
    backfill_rate_msgs_s: float = Field(default=50.0, gt=0)
    backfill_burst: int = Field(default=50, ge=1)
    #: A wall clock moving this far against the monotonic clock between checks is a jump.
    clock_jump_threshold_s: float = Field(default=1.0, gt=0)
    #: The clock is known good within this many seconds of the cloud's (``stored.ts``).
    clock_max_skew_s: float = Field(default=5.0, gt=0)
    #: After a lost link the first retry waits a random time below ``reconnect_min_s``
    #: (each gateway's own phase, so a fleet that lost its broker together does not come
    #: back together); later retries wait ``reconnect_min_s`` doubling up to
    #: ``reconnect_max_s`` (``pacing.Reconnect``; ARCHITECTURE decision 36).
    reconnect_min_s: float = Field(default=RECONNECT_WINDOW_S, gt=0)
    reconnect_max_s: float = Field(default=RECONNECT_MAX_S, gt=0)
    unreachable_backoff_max_s: float = Field(default=60.0, gt=0)
    endpoints: list[AnyEndpoint] = Field(default_factory=list)
    #: Extra device profiles (``*.yaml``) beside the built-in ones; names must not clash.
    profile_dir: Path | None = None
    #: Site location (degrees, north and east positive): a PV device that stops answering
    #: while the sun is down here is ``asleep``, not unreachable. Unset = not known.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    #: Local HTTP port for ``/healthz`` and ``/metrics``; None = not served.
    health_port: int | None = Field(default=None, ge=0, le=65535)
    health_host: str = "127.0.0.1"
    #: ``json`` writes one JSON object per log line (for journald / log shippers).
    log_format: Literal["text", "json"] = "text"
    #: Public keys (Ed25519 PEM) whose signatures on ``cmd``/``config`` are trusted; none =
    #: every document is refused as untrusted. Rotation: list old and new, then drop old.
    trusted_key_files: list[Path] = Field(default_factory=list)
    #: How often the effective settings are read back to detect drift.
    config_check_interval_s: float = Field(default=60.0, gt=0)
    #: A command expiring further ahead than this is refused (bounds the seen-id store).
    command_max_lifetime_s: float = Field(default=86_400.0, gt=0)
    #: Seen command ids kept until their commands expire; full = new commands refused.
    replay_capacity: int = Field(default=10_000, ge=1)
    #: Received ``cmd``/``config`` documents waiting for the control task; when full, a
    #: command is dropped unanswered (the cloud expires it), a config re-reported "busy".
    control_queue_size: int = Field(default=32, ge=1)
    #: How long a curve adoption (``AdptCrvRslt``) may take.
    curve_adopt_timeout_s: float = Field(default=10.0, gt=0)
    #: How long a command's declared effect (an isolator's state) may take to show.
    command_effect_timeout_s: float = Field(default=10.0, gt=0)
    #: How long commands and configs wait at start for every device to be tried once.
    control_discovery_wait_s: float = Field(default=30.0, gt=0)
    #: Durable control state (seen ids, handled config); default beside the buffer.
    control_state_path: Path | None = None

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, v: str) -> str:
        parts = urlsplit(v)
        try:
            parts.port  # noqa: B018  # raises on a port that is not a number
        except ValueError:
            raise ValueError("mqtt_url has a port that is not a number") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("mqtt_url must look like mqtts://[user@]host[:port] (or mqtt://)")
        return v

    @field_validator("mqtt_key_file", "mqtt_password_file")
    @classmethod
    def _key_owner_only(cls, v: Path | None) -> Path | None:
        # Like ssh: a private key others may read is no longer private; refused, not
        # warned, because a warning in a gateway's journal is read by nobody.
        if v is not None and v.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            mode = stat.S_IMODE(v.stat().st_mode)
            raise ValueError(f"{v} is readable by group or others (mode {mode:04o}): chmod 600 it")
        return v

    @model_validator(mode="after")
    def _link_security(self) -> Self:
        parts = urlsplit(self.mqtt_url)
        tls = parts.scheme in TLS_SCHEMES
        tls_files = {
            "mqtt_ca_file": self.mqtt_ca_file,
            "mqtt_cert_file": self.mqtt_cert_file,
            "mqtt_key_file": self.mqtt_key_file,
        }
        given = [name for name, path in tls_files.items() if path is not None]
        if given and not tls:
            raise ValueError(f"{', '.join(given)}: TLS files need an mqtts:// mqtt_url")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("mqtt_cert_file and mqtt_key_file go together")
        if self.env == "production":
            if not tls:
                raise ValueError(
                    "mqtt_url: plaintext MQTT is refused in production (env=production);"
                    " use mqtts://"
                )
            if self.mqtt_ca_file is None:
                raise ValueError(
                    "mqtt_ca_file is required in production: the CA the broker's"
                    " certificate must chain to"
                )
            if parts.password is not None:
                raise ValueError(
                    "mqtt_url: no password in the URL in production; give it in"
                    " mqtt_password (POTR_MQTT_PASSWORD)"
                )
            if (
                self.mqtt_cert_file is None
                and self.mqtt_password is None
                and self.mqtt_password_file is None
            ):
                raise ValueError(
                    "production needs an identity: mqtt_password(_file) or mqtt_cert_file +"
                    " mqtt_key_file"
                )
        if parts.password is not None:
            # Out of the URL, so no repr, log line or error message ever shows it.
            if self.mqtt_password is None:
                self.mqtt_password = SecretStr(unquote(parts.password))
            self.mqtt_url = _without_password(self.mqtt_url)
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self

    @field_validator("endpoints")
    @classmethod
    def _unique_names(
        cls, v: list[EndpointSettings | RtuEndpointSettings]
    ) -> list[EndpointSettings | RtuEndpointSettings]:
        names = [e.name for e in v]
        if len(set(names)) != len(names):
            raise ValueError("endpoint names repeat")
        lines = [e.serial_port for e in v if isinstance(e, RtuEndpointSettings)]
        if len(set(lines)) != len(lines):
            raise ValueError("two endpoints on one serial line: list its unit ids on one")
        return v

    @model_validator(mode="after")
    def _known_profiles(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        wanted = {
            (f"endpoints.{i}.{key}", name)
            for i, ep in enumerate(self.endpoints)
            for key, name in [("profile", ep.profile)]
            + [(f"unit_profiles.{u}", n) for u, n in ep.unit_profiles.items()]
            if name is not None
        }
        if not wanted:
            return self
        known = self.device_profiles()
        for key, name in sorted(wanted):
            if name not in known:
                raise ValueError(f"{key}: unknown device profile {name!r}")
        return self

    def device_profiles(self) -> dict[str, DeviceProfile]:
        """The built-in profiles plus those of ``profile_dir``."""
        profiles = builtin_profiles()
        if self.profile_dir is not None:
            try:
                extra = load_profiles(self.profile_dir)
            except ProfileError as exc:
                raise ValueError(f"profile_dir: {exc}") from None
            clash = sorted(set(extra) & set(profiles))
            if clash:
                raise ValueError(f"profile_dir: redefines built-in profiles {clash}")
            profiles |= extra
        return profiles

    def trusted_keys(self) -> TrustedKeys:
        """The trusted public keys from ``trusted_key_files``; :class:`SettingsError` for
        an unreadable file or one that is not an Ed25519 public key."""
        pems = []
        for path in self.trusted_key_files:
            try:
                pems.append(path.read_bytes())
            except OSError as exc:
                raise SettingsError(f"trusted_key_files: {path}: {exc}") from None
        try:
            return TrustedKeys.from_pems(pems)
        except (SignatureError, ValueError) as exc:
            raise SettingsError(f"trusted_key_files: {exc}") from None

    @property
    def effective_publish_interval_s(self) -> float:
        return self.publish_interval_s or self.poll_interval_s

    def mqtt_target(self) -> MqttTarget:
        """Host, port, TLS or not, username and password; explicit fields beat the URL's."""
        parts = urlsplit(self.mqtt_url)
        user = self.mqtt_username or (unquote(parts.username) if parts.username else None)
        return MqttTarget(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme in TLS_SCHEMES,
            username=user,
            password=self.mqtt_password or self._password_from_file(),
        )

    def _password_from_file(self) -> SecretStr | None:
        """The password file's content, read now (None without one); a file that went
        missing is a connect failure the link reports and retries, not a crash."""
        if self.mqtt_password_file is None:
            return None
        try:
            return SecretStr(self.mqtt_password_file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise SettingsError(f"mqtt_password_file: {exc}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment overrides the file (passed as init kwargs).
        return env_settings, init_settings

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AgentSettings:
        """Load ``path`` then apply ``POTR_*`` environment overrides; refuse bad files."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read: {exc}") from None
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: top level must be a mapping of settings")
        raw.update(overrides)
        try:
            return cls(**raw)
        except ValidationError as exc:
            raise SettingsError(f"{path}: {_summarise(exc)}") from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        # The union's branch tag (``endpoints.0.tcp.port``) is not a key of the file.
        path = [p for p in err["loc"] if p not in ("tcp", "rtu")]
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{'.'.join(str(p) for p in path)}: {msg}" if path else msg)
    return "; ".join(parts)


__all__ = [
    "AgentSettings",
    "AnyEndpoint",
    "EndpointSettings",
    "MqttTarget",
    "RtuEndpointSettings",
    "SettingsError",
    "TcpEndpointSettings",
]
