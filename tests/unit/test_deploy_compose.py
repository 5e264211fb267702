"""``deploy/compose/<region>.yaml``, ``deploy/compose/identity.yaml`` and the gateway's
systemd unit against the code they run, without Docker.

Each potr service's command must be a command of the ``potr`` CLI with options it has;
each ``POTR_*`` name a setting (and one that the command's own settings read and accept
as production settings); each MQTT identity one process's; the broker container must
see every file ``potr broker render`` names in ``mosquitto.conf``, at that path; the image
must carry every library the services import; each pool the API gateway balances (a
region's ``potr api``, identity's ``potr identity-api``) at least two processes on distinct
ports; the gateway's unit must run the prefix render writes; and every ``potr`` line of the
operations pages (``docs/brokers.md``, ``docs/gateway.md``) must be a real command. A
renamed command, option or setting fails here with the name that no longer exists.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer.main
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from broker_config import nginx
from cloud.billing import ReminderSettings
from cloud.config import ConfigSettings
from cloud.dispatch import DispatchSettings, FlowSettings
from cloud.events.runtime import BusSettings
from cloud.identity import IdentityRelaySettings, IdentitySettings
from cloud.ingest import IngestSettings
from cloud.notify import NotifySettings
from cloud.portal import PortalSettings
from cloud.reports import PackSettings, ServicesSettings
from cloud.settings import DatabaseSettings
from contracts.identities import IdentityKind, parse_username
from contracts.topics import Region
from potr.broker_render import CONF_FILE, BrokerLayout
from potr.broker_settings import BrokerSiteSettings
from potr.cli import app
from potr.gateway_settings import GatewaySettings
from potr.ingest_workers import worker_settings
from potr.provisioning import ACL_FILE, PASSWORD_FILE

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
SECRETS_EXAMPLE = COMPOSE_DIR / "secrets.example"
DOCKERFILE = "deploy/Dockerfile"
GATEWAY_UNIT = ROOT / "deploy" / "potr-gateway.service"
#: What an operator puts in ``compose.env`` (the files' ``${...}`` names).
INTERPOLATION = {
    "BROKER_HOST": "mqtt.example.net",
    "API_ADDRESS": "10.1.0.11",
    "IDENTITY_ADDRESS": "10.9.0.11",
    "GATEWAY_ADDRESS": "10.0.0.5",
    "SMTP_HOST": "smtp.example.net",
    "RESET_URL": "https://portal.example.net/reset-password#token=",
    "PORTAL_URL": "https://portal.example.net",
    "API_ADDRESSES": "10.1.0.11,10.2.0.11,10.3.0.11",
}
#: Stand-ins for the secrets of each potr env file (empty in the examples).
FAKE_SECRETS = {
    "potr.env": {
        "POTR_DATABASE_URL": "postgresql://potr:not-a-secret@db:5432/potr",
        "POTR_AMQP_URL": "amqp://potr:not-a-secret@rabbitmq:5672/",
        "POTR_SMTP_USERNAME": "potr-notify",
        "POTR_SMTP_PASSWORD": "not-a-secret",
    },
    "identity.env": {
        "POTR_DATABASE_URL": "postgresql://potr:not-a-secret@db:5432/potr",
        "POTR_SMTP_USERNAME": "potr-identity",
        "POTR_SMTP_PASSWORD": "not-a-secret",
        "POTR_IDENTITY_REGION_BUSES": json.dumps(
            {r.value: f"amqp://potr:not-a-secret@10.{i}.0.11:5672/" for i, r in enumerate(Region)}
        ),
    },
}
PROJECT_PACKAGES = {
    "contracts",
    "pacing",
    "device_profiles",
    "edge_agent",
    "simulators",
    "broker_config",
    "cloud",
    "potr",
}

Command = tuple[str, ...]
#: Each command the files run, and the settings classes it loads (read from potr/cli*.py).
#: A region's admin service runs the operator's `potr broker|gateway` commands, which read
#: BrokerSiteSettings and the registry's database; identity's the `potr user` commands.
COMMANDS: dict[Command, tuple[type[BaseSettings], ...]] = {
    ("db", "migrate"): (DatabaseSettings,),
    ("ingest",): (IngestSettings, ConfigSettings, BusSettings),
    ("config", "run"): (ConfigSettings, BusSettings),
    # SapSettings too when POTR_SAP_BASE_URL is set; the files leave SAP off.
    ("services",): (
        NotifySettings,
        BusSettings,
        DispatchSettings,
        FlowSettings,
        ReminderSettings,
        PackSettings,
        ServicesSettings,
    ),
    ("api",): (PortalSettings, ConfigSettings),
    ("pki", "list"): (BrokerSiteSettings, DatabaseSettings),
    ("identity-api",): (IdentitySettings, IdentityRelaySettings, BusSettings),
    ("user", "list"): (IdentitySettings,),
}
REGIONS = [r.value for r in Region]
IDENTITY = "identity"
#: Every compose file (its name without .yaml) and the command each potr service runs.
SERVICES: dict[str, dict[str, Command]] = {
    **{
        region: {
            "migrate": ("db", "migrate"),
            "ingest": ("ingest",),
            "config": ("config", "run"),
            "services": ("services",),
            "api": ("api",),
            "api-2": ("api",),
            "admin": ("pki", "list"),
        }
        for region in REGIONS
    },
    IDENTITY: {
        "migrate": ("db", "migrate"),
        "identity": ("identity-api",),
        "identity-2": ("identity-api",),
        "admin": ("user", "list"),
    },
}
FILES = list(SERVICES)
#: The kind of broker identity each MQTT-connected command uses.
IDENTITY_KINDS = {
    ("ingest",): IdentityKind.INGEST,
    ("config", "run"): IdentityKind.CONFIG,
    ("api",): IdentityKind.CONFIG,
}
#: The HTTP servers the API gateway balances: the setting naming the port each listens on,
#: and the compose.env variable naming the host address it is published on.
POOLS: dict[Command, tuple[str, str]] = {
    ("api",): ("POTR_API_PORT", "API_ADDRESS"),
    ("identity-api",): ("POTR_IDENTITY_API_PORT", "IDENTITY_ADDRESS"),
}

CLI = typer.main.get_command(app)


# -- reading the files ----------------------------------------------------------------


def _interpolate(text: str, path: Path) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in INTERPOLATION, f"{path.name}: ${{{name}}} is not a variable we know"
        return INTERPOLATION[name]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", value, text)


def compose(name: str) -> dict[str, Any]:
    """``deploy/compose/<name>.yaml`` (a region or identity) with ``${...}`` filled in."""
    path = COMPOSE_DIR / f"{name}.yaml"
    data = yaml.safe_load(_interpolate(path.read_text(encoding="utf-8"), path))
    assert isinstance(data, dict)
    return data


def potr_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the image built from deploy/Dockerfile."""
    return {
        name: svc
        for name, svc in spec["services"].items()
        if (svc.get("build") or {}).get("dockerfile") == DOCKERFILE
    }


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def env_file_names(path: Path) -> list[str]:
    return [
        line.split("=", 1)[0].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    ]


def mounts(svc: dict[str, Any]) -> dict[str, tuple[str | None, bool]]:
    """Container path → (host path or None, writable) for volumes, secrets and configs."""
    out: dict[str, tuple[str | None, bool]] = {}
    for volume in svc.get("volumes") or []:
        source, target, *mode = volume.split(":")
        out[target] = (source, "ro" not in mode)
    for secret in svc.get("secrets") or []:
        target = secret.get("target", secret["source"])
        out[str(PurePosixPath("/run/secrets") / target)] = (None, False)
    for config in svc.get("configs") or []:
        out[config.get("target", "/" + config["source"])] = (None, False)
    return out


def mount_of(path: str, svc: dict[str, Any]) -> tuple[str, str | None, bool] | None:
    """The most specific mount holding ``path`` in ``svc``: (its target, source, rw)."""
    best = None
    for target, (source, rw) in mounts(svc).items():
        if PurePosixPath(path).is_relative_to(target) and (
            best is None or len(target) > len(best[0])
        ):
            best = (target, source, rw)
    return best


# -- the CLI --------------------------------------------------------------------------


class NotACommand(Exception):
    """``argv`` is not a command of the ``potr`` CLI, or not with those options."""


def parse_cli(argv: Sequence[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The command path of ``potr …`` and its parsed parameters, as the CLI would parse
    them (option names, types, ranges, required options); :class:`NotACommand` naming
    what does not exist or fit."""
    assert argv[0] == "potr", argv
    command: Any = CLI
    path: list[str] = []
    args = list(argv[1:])
    while hasattr(command, "commands"):  # a group (typer may bring its own click)
        if not args or args[0] not in command.commands:
            raise NotACommand(
                f"{shlex.join(argv)}: `potr {' '.join(path)}` has no command"
                f" {args[0] if args else '(none given)'!r}"
            )
        name = args.pop(0)
        path.append(name)
        command = command.commands[name]
    try:
        ctx = command.make_context(" ".join(["potr", *path]), args)
    except Exception as exc:  # click's usage errors: unknown option, bad value, missing
        message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
        raise NotACommand(f"{shlex.join(argv)}: {message}") from None
    return tuple(path), dict(ctx.params)


# -- settings -------------------------------------------------------------------------


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class of the project (cloud services, broker site, agent)."""
    importlib.import_module("cloud.bootstrap")
    importlib.import_module("potr.broker_settings")
    importlib.import_module("edge_agent.settings")
    found: list[type[BaseSettings]] = []
    todo: list[type[BaseSettings]] = [BaseSettings]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] in PROJECT_PACKAGES and sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def env_names(cls: type[BaseSettings]) -> tuple[set[str], str | None]:
    """The variables ``cls`` reads, and its nested delimiter (``POTR_A__B``) if any."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())  # pydantic-settings reads an alias without the prefix
        else:
            names.add(f"{prefix}{name}".upper())
    return names, cls.model_config.get("env_nested_delimiter")


def reads(classes: Sequence[type[BaseSettings]], variable: str) -> bool:
    for cls in classes:
        names, nested = env_names(cls)
        if variable in names or (nested and any(variable.startswith(n + nested) for n in names)):
            return True
    return False


SetEnv = Callable[[dict[str, str], dict[str, Any]], None]


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> SetEnv:
    """Sets exactly a service's ``POTR_*`` environment: ``env`` and the stand-ins for the
    secrets of its env file (``svc``)."""

    def apply(env: dict[str, str], svc: dict[str, Any]) -> None:
        for name in list(os.environ):
            if name.startswith("POTR_"):
                monkeypatch.delenv(name)
        for name, value in {**FAKE_SECRETS[Path(svc["env_file"]).name], **env}.items():
            monkeypatch.setenv(name, value)

    return apply


# -- the tests ------------------------------------------------------------------------


def test_every_region_has_a_file_identical_but_for_its_name() -> None:
    model = (COMPOSE_DIR / "au.yaml").read_text(encoding="utf-8")
    for region in REGIONS:
        text = (COMPOSE_DIR / f"{region}.yaml").read_text(encoding="utf-8")
        assert text == re.sub(r"\bau\b", region, model), f"{region}.yaml drifted from au.yaml"
        assert compose(region)["name"] == f"potr-{region}"


@pytest.mark.parametrize("file", FILES)
def test_every_potr_service_runs_a_potr_command_with_options_it_has(file: str) -> None:
    services = potr_services(compose(file))
    assert set(services) == set(SERVICES[file]), "a potr service the test does not know of"
    for name, svc in services.items():
        try:
            path, _ = parse_cli(svc["command"])
        except NotACommand as exc:
            pytest.fail(f"{file}.yaml service {name}: {exc}")
        assert path == SERVICES[file][name], f"{name} runs `potr {' '.join(path)}`"


def test_every_potr_variable_is_a_setting() -> None:
    classes = settings_classes()
    given = {
        f"{file}.yaml {name}": list(environment(svc))
        for file in FILES
        for name, svc in compose(file)["services"].items()
    }
    given |= {f"secrets.example/{f.name}": env_file_names(f) for f in SECRETS_EXAMPLE.iterdir()}
    unknown = {
        where: bad
        for where, names in given.items()
        if (bad := [v for v in names if v.startswith("POTR_") and not reads(classes, v)])
    }
    assert not unknown, f"not a field of any settings class: {unknown}"


def test_the_potr_env_file_examples_hold_the_secrets_the_tests_stand_in_for() -> None:
    for env_file, secrets in FAKE_SECRETS.items():
        example = set(env_file_names(SECRETS_EXAMPLE / env_file))
        assert example == set(secrets), f"{env_file} example changed: update FAKE_SECRETS"


@pytest.mark.parametrize("file", FILES)
def test_each_service_gets_what_its_command_reads_and_production_accepts_it(
    file: str, service_env: SetEnv
) -> None:
    for name, svc in potr_services(compose(file)).items():
        env_file = Path(svc["env_file"]).name
        assert env_file in FAKE_SECRETS, f"{name}: {env_file} is not a potr env file"
        classes = COMMANDS[SERVICES[file][name]]
        env = environment(svc)
        unread = [v for v in env if not reads(classes, v)]
        assert not unread, f"{name}: its command reads none of {unread}"
        service_env(env, svc)
        for cls in classes:
            cls()  # production checks included (POTR_ENV=production where set)


@pytest.mark.parametrize("file", FILES)
def test_every_env_file_a_service_reads_has_an_example(file: str) -> None:
    examples = {f.name for f in SECRETS_EXAMPLE.iterdir()}
    for name, svc in compose(file)["services"].items():
        for env_file in [svc["env_file"]] if "env_file" in svc else []:
            assert Path(env_file).parent == Path(f"/srv/potr/{file}/secrets"), name
            assert Path(env_file).name in examples, f"{name}: no example of {env_file}"


@pytest.mark.parametrize("file", FILES)
def test_every_file_or_directory_a_setting_names_is_mounted(file: str) -> None:
    for name, svc in potr_services(compose(file)).items():
        for variable, value in environment(svc).items():
            if variable.endswith(("_FILE", "_DIR")):
                assert mount_of(value, svc), f"{name}: {variable}={value} is not mounted"


@pytest.mark.parametrize("file", FILES)
def test_every_secret_is_a_file_of_the_hosts_secrets_directory(file: str) -> None:
    spec = compose(file)
    declared = spec.get("secrets") or {}
    used = {s["source"] for svc in spec["services"].values() for s in svc.get("secrets") or []}
    assert used == set(declared), f"used {sorted(used)}, declared {sorted(declared)}"
    for name, secret in declared.items():
        assert Path(secret["file"]).parent == Path(f"/srv/potr/{file}/secrets"), name


@pytest.mark.parametrize("file", FILES)
def test_each_pool_the_gateway_balances_has_two_processes_on_distinct_host_ports(
    file: str,
) -> None:
    services = potr_services(compose(file))
    pools: dict[Command, list[dict[str, Any]]] = {}
    for name, svc in services.items():
        if SERVICES[file][name] in POOLS:
            pools.setdefault(SERVICES[file][name], []).append(svc)
    assert pools, f"{file}.yaml runs no process the gateway sends requests to"
    for command, members in pools.items():
        port_setting, address = POOLS[command]
        assert len(members) >= 2, f"`potr {' '.join(command)}`: one process, no failover"
        published = []
        for svc in members:
            env = environment(svc)
            [mapping] = svc["ports"]
            host, host_port, container_port = mapping.split(":")
            # Plain HTTP for the gateway: on the address compose.env names, never all.
            assert host == INTERPOLATION[address], mapping
            assert container_port == env[port_setting], mapping
            published.append(host_port)
            if command == ("api",):
                assert env["POTR_API_REGION"] == file  # each serves only its region
                assert env["POTR_API_TRUSTED_PROXIES"] == INTERPOLATION["GATEWAY_ADDRESS"]
            else:
                trusted = env["POTR_IDENTITY_TRUSTED_PROXIES"].split(",")
                assert trusted[0] == INTERPOLATION["GATEWAY_ADDRESS"]
                assert trusted[1:] == INTERPOLATION["API_ADDRESSES"].split(",")
        assert len(set(published)) == len(published), f"host ports {published}"


@pytest.mark.parametrize("file", REGIONS)
def test_the_api_processes_share_one_writable_photo_directory(file: str) -> None:
    # A photo uploaded through one API process is read (and erased) through the other.
    photo_dir = str(DispatchSettings().dispatch_photo_dir)
    services = potr_services(compose(file))
    apis = [svc for name, svc in services.items() if SERVICES[file][name] == ("api",)]
    assert len(apis) >= 2
    held = {mount_of(photo_dir, svc) for svc in apis}
    assert len(held) == 1, held
    [(_, source, writable)] = held
    assert writable, held
    assert source is not None, held
    assert source in (compose(file).get("volumes") or {}), f"{source}: not a named volume"


@pytest.mark.parametrize("region", REGIONS)
def test_each_regions_services_send_that_regions_own_reports_pack(
    region: str, service_env: SetEnv
) -> None:
    """A database per region: the monthly pack of each region's `potr services` is its own
    region's (ARCHITECTURE 151), never every region's from one region's data."""
    [(name, svc)] = [
        (n, s)
        for n, s in potr_services(compose(region)).items()
        if SERVICES[region][n] == ("services",)
    ]
    service_env(environment(svc), svc)
    assert ServicesSettings().region == Region(region), name


@pytest.mark.parametrize("region", REGIONS)
def test_one_broker_identity_per_process(region: str, service_env: SetEnv) -> None:
    seen: dict[str, str] = {}
    for name, svc in potr_services(compose(region)).items():
        path = SERVICES[region][name]
        env = environment(svc)
        if "POTR_MQTT_USERNAME" not in env:
            continue
        _, params = parse_cli(svc["command"])
        service_env(env, svc)
        if path == ("ingest",):
            settings = IngestSettings(ingest_workers=params["workers"])
            users = [worker_settings(settings, n).mqtt_user for n in range(settings.ingest_workers)]
        else:
            users = [ConfigSettings().mqtt_user]
        for user in users:
            assert user is not None
            kind, ident = parse_username(user)
            assert kind is IDENTITY_KINDS[path], f"{name} connects as {user}"
            assert ident.split("-")[0] == region, f"{name} connects as {user}"
            assert user not in seen, f"{name} and {seen.get(user)} both connect as {user}"
            seen[user] = name
    assert len(seen) >= 5  # two ingest workers, the config service, two API processes


#: The keywords of mosquitto.conf that name a file or directory.
PATH_KEYWORDS = (
    "cafile",
    "certfile",
    "keyfile",
    "crlfile",
    "password_file",
    "acl_file",
    "persistence_location",
    "pid_file",
)


def _rendered(broker_dir: Path) -> str:
    """mosquitto.conf as ``potr broker render`` writes it for ``broker_dir``."""
    from potr import broker_render

    return broker_render.broker_config_for(
        broker_dir,
        BrokerLayout(),
        password_file=broker_dir / PASSWORD_FILE,
        acl_file=broker_dir / ACL_FILE,
    ).render()


def _rendered_paths(broker_dir: Path) -> dict[str, str]:
    """keyword → path in the rendered mosquitto.conf."""
    conf = _rendered(broker_dir)
    lines = [line.split() for line in conf.splitlines()]
    paths = {w[0]: w[1].rstrip("/") for w in lines if w and w[0] in PATH_KEYWORDS}
    assert set(paths) == set(PATH_KEYWORDS), conf
    return paths


@pytest.mark.parametrize("region", REGIONS)
def test_the_broker_container_sees_what_render_writes_at_its_paths(region: str) -> None:
    spec = compose(region)
    broker, admin = spec["services"]["broker"], spec["services"]["admin"]
    site = environment(admin)
    broker_dir = site["POTR_BROKER_DIR"]
    # The config: the broker starts on the file render writes, at the same path.
    conf = f"{broker_dir}/{CONF_FILE}"
    assert conf in broker["command"][-1].split(), broker["command"]
    assert mount_of(broker_dir, admin) == (broker_dir, broker_dir, True)
    for key, path in _rendered_paths(Path(broker_dir)).items():
        where = mount_of(path, broker)
        assert where is not None, f"mosquitto.conf {key} {path}: not mounted in the broker"
        target, source, rw = where
        assert source == target, f"{key} {path}: mounted from {source}, not the same path"
        # Mosquitto writes its persistence and pid file; nothing else of it is writable.
        assert rw == (key in ("persistence_location", "pid_file")), f"{key} {path} rw={rw}"
    # The CA the cloud processes check the broker with is the one render installs.
    ca = _rendered_paths(Path(broker_dir))["cafile"]
    assert spec["configs"]["broker-ca"]["file"] == ca


def test_the_rendered_broker_logs_refusals_where_docker_collects_them() -> None:
    # docs/brokers.md sends operators to `docker compose logs broker` for "not authorised"
    # (a notice) — and not the information level, a line per save every second.
    conf = _rendered(Path("/srv/potr/au/broker")).splitlines()
    assert "log_dest stderr" in conf  # unbuffered: stdout to a pipe comes in 4 KiB lumps
    assert [line for line in conf if line.startswith("log_type")] == [
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]


@pytest.mark.parametrize("region", REGIONS)
def test_ports_and_urls_are_the_listeners_render_makes(region: str) -> None:
    spec = compose(region)
    render: Any = CLI.commands["broker"].commands["render"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in render.params}
    assert (defaults["port"], defaults["cert_port"]) == (BrokerLayout.port, BrokerLayout.cert_port)
    published = {p.split(":")[-1] for p in spec["services"]["broker"]["ports"]}
    assert published == {str(defaults["port"]), str(defaults["cert_port"])}
    site = environment(spec["services"]["admin"])
    assert site["POTR_BROKER_URL"].endswith(f":{defaults['port']}")
    assert site["POTR_BROKER_CERT_URL"].endswith(f":{defaults['cert_port']}")
    host = INTERPOLATION["BROKER_HOST"]
    assert host in spec["services"]["broker"]["networks"]["default"]["aliases"]
    for name, svc in potr_services(spec).items():
        url = environment(svc).get("POTR_MQTT_URL")
        if url is not None:
            assert url == f"mqtts://{host}:{defaults['port']}", name


def _closure(requirements: Sequence[str]) -> set[str]:
    """Distribution names ``requirements`` install, transitively (what is installed here
    stands for what pip would resolve)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in dist.requires or []:
            sub = Requirement(line)
            wanted = {"", *req.extras}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in wanted):
                todo.append(sub)
    return {name for name, _ in seen}


#: What the compose services' commands import (lazily too), as a fresh process sees it.
SERVICE_IMPORTS = [
    "potr.cli",
    "potr.runtime",
    "cloud.migrate",
    "cloud.bootstrap",
    "cloud.events.amqp",
    "cloud.sap.odata",  # `potr services` with POTR_SAP_BASE_URL
    "cloud.adapters.mqtt",
    "potr.ingest_workers",
    "potr.broker_render",
    "potr.provisioning",
    "broker_config.pki",
    "uvicorn",  # potr.runtime.serve_http
]


#: Imported only when present, with a fallback the image uses.
OPTIONAL_IMPORTS = {
    "pytz": "Babel's local time zone looks for it, else uses zoneinfo",
}


def test_the_image_installs_every_library_the_services_import() -> None:
    dockerfile = (ROOT / DOCKERFILE).read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M))
    assert packages <= copied, f"the image lacks {packages - copied}"
    match = re.search(r'pip install "\.\[([a-z,]+)\]"', dockerfile)
    assert match, 'the Dockerfile installs the project with extras: pip install ".[…]"'
    extras = match.group(1).split(",")
    assert set(extras) <= set(project["optional-dependencies"])
    allowed = _closure(
        project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]
    )
    # Top-level modules loaded from a file (not the interpreter's own, nor Cython's).
    code = (
        f"import importlib, json, sys; [importlib.import_module(m) for m in {SERVICE_IMPORTS!r}];"
        " print(json.dumps(sorted({n.split('.')[0] for n, m in list(sys.modules.items())"
        " if getattr(m, '__file__', None)})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module in json.loads(done.stdout):
        if module in sys.stdlib_module_names or module in PROJECT_PACKAGES or module[0] == "_":
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & allowed and module not in OPTIONAL_IMPORTS:
            missing[module] = sorted(dists) or "no distribution"
    assert not missing, f"imported by the services, not installed by {extras}: {missing}"


def documented_commands(text: str) -> list[list[str]]:
    """Every ``potr …`` line in the page's shell blocks: at the start of a line, or
    after ``… run --rm admin`` (the compose admin service)."""
    commands = []
    for block in re.findall(r"^```(?:sh|shell|bash)?\n(.*?)^```", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if "potr" not in words:
                continue
            at = words.index("potr")
            if at and words[at - 1] != "admin":
                continue
            argv = words[at:]
            for stop in ("&&", "||", ";", "|", ">"):
                if stop in argv:
                    argv = argv[: argv.index(stop)]
            commands.append(argv)
    return commands


@pytest.mark.parametrize(("page", "at_least"), [("brokers.md", 15), ("gateway.md", 5)])
def test_the_operations_page_names_only_real_commands(page: str, at_least: int) -> None:
    commands = documented_commands((ROOT / "docs" / page).read_text(encoding="utf-8"))
    assert len(commands) >= at_least, commands  # the page's examples were found
    wrong = []
    for argv in commands:
        try:
            parse_cli(argv)
        except NotACommand as exc:
            wrong.append(str(exc))
    assert not wrong, "\n".join(wrong)


# -- the API gateway ------------------------------------------------------------------


def gateway_renders() -> list[dict[str, Any]]:
    """The parameters of each ``potr gateway-config render`` on the gateway's page."""
    page = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    renders = [
        parse_cli(argv)[1]
        for argv in documented_commands(page)
        if argv[1:3] == ["gateway-config", "render"]
    ]
    assert renders, "docs/gateway.md shows no render"
    return renders


def unit_file(path: Path) -> dict[str, dict[str, str]]:
    """A systemd unit's sections (each key once, as ours are written)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        assert key not in current, f"{path.name}: {key} twice"
        current[key] = value
    return sections


def test_the_documented_gateway_reaches_every_pool_at_the_ports_compose_publishes() -> None:
    def host_ports(file: str, command: Command) -> set[str]:
        services = potr_services(compose(file))
        return {
            port.split(":")[1]
            for name, svc in services.items()
            if SERVICES[file][name] == command
            for port in svc["ports"]
        }

    for params in gateway_renders():
        pools = dict(item.split("=", 1) for item in params["region_upstream"])
        assert set(pools) == set(REGIONS)
        for region, servers in pools.items():
            ports = {server.rsplit(":", 1)[1] for server in servers.split(",")}
            assert ports == host_ports(region, ("api",)), f"{region}: {servers}"
        identity = {s.rsplit(":", 1)[1] for s in params["identity_upstream"].split(",")}
        assert identity == host_ports(IDENTITY, ("identity-api",))


def test_the_gateway_unit_runs_nginx_from_the_prefix_render_writes() -> None:
    unit = unit_file(GATEWAY_UNIT)
    start = unit["Service"]["ExecStart"]
    argv = shlex.split(start)
    assert argv[0] == "/usr/sbin/nginx", "Debian's nginx-light"
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    prefix = PurePosixPath(options["-p"])
    assert options["-c"] == nginx.CONF_FILE
    assert options["-e"] == nginx.ERROR_LOG
    assert options["-g"] == "daemon off;"  # the unit's main process is nginx's master
    assert unit["Unit"]["ConditionPathExists"] == str(prefix / nginx.CONF_FILE)
    for params in gateway_renders():
        assert PurePosixPath(params["out"]) == prefix, "render writes where the unit runs"
        settings = GatewaySettings(
            gateway_dir=params["out"],
            gateway_upstreams=";".join(params["region_upstream"]),
            gateway_identity_upstreams=params["identity_upstream"],
        )
        conf = settings.config().render().splitlines()
        # render reloads the pid its config names, under the prefix: the master, which
        # -g keeps in the foreground (a `daemon` line of the config would clash with it).
        assert f"pid {nginx.PID_FILE};" in conf
        assert not [line for line in conf if line.strip().startswith("daemon")]
    assert unit["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # The page's run line is the unit's.
    page = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    assert start.removeprefix("/usr/sbin/") in page


@pytest.mark.parametrize("region", REGIONS)
def test_the_background_services_meet_ingest_and_config_on_rabbitmq(
    region: str, service_env: SetEnv
) -> None:
    # `potr services` refuses production without RabbitMQ: the env file gives it the
    # broker every other potr process of the region uses, and it runs once per region.
    services = potr_services(compose(region))
    [name] = [n for n in services if SERVICES[region][n] == ("services",)]
    svc = services[name]
    assert {Path(s["env_file"]).name for s in services.values()} == {"potr.env"}
    service_env(environment(svc), svc)
    assert NotifySettings().env == "production"
    assert BusSettings().amqp_url == FAKE_SECRETS["potr.env"]["POTR_AMQP_URL"]
    assert NotifySettings().smtp_starttls  # mail to the relay, never in clear
    assert NotifySettings().notify_portal_url == INTERPOLATION["PORTAL_URL"]
