"""``potr profiles list|show|validate``: the device profiles (device types as data)."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from device_profiles import (
    BUILTIN_DIR,
    DeviceProfile,
    ProfileError,
    load_profile,
    load_profiles,
)

profiles_app = typer.Typer(help="Device profiles (device types as data)", no_args_is_help=True)
console = Console()

_DIR = typer.Option(BUILTIN_DIR, "--dir", help="folder of *.yaml profiles")


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")


def _load_dir(directory: Path) -> dict[str, DeviceProfile]:
    try:
        return load_profiles(directory)
    except ProfileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@profiles_app.command("list")
def list_profiles(directory: Path = _DIR) -> None:
    """List the profiles of a folder: name, kind, models or vendor map, manufacturer."""
    profiles = _load_dir(directory)
    table = Table("name", "kind", "models", "manufacturer / model")
    for name, profile in profiles.items():
        models = " ".join(str(m) for m in profile.models)
        if profile.vendor_map is not None:
            models += " + vendor map"
        table.add_row(name, profile.kind, models, f"{profile.manufacturer} / {profile.model}")
    console.print(table)


@profiles_app.command("show")
def show_profile(name: str, directory: Path = _DIR) -> None:
    """Print one profile (by name, or a path to a YAML file) as checked YAML."""
    path = Path(name)
    try:
        if path.suffix in (".yaml", ".yml") and path.exists():
            profile = load_profile(path)
        else:
            profiles = _load_dir(directory)
            if name not in profiles:
                console.print(f"[red]no profile {name!r} in {directory}[/red]")
                raise typer.Exit(1)
            profile = profiles[name]
    except ProfileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    data = profile.model_dump(mode="json", exclude_defaults=True)
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


@profiles_app.command("validate")
def validate_profiles(
    paths: list[Path] = typer.Argument(None, help="profile files or folders (default: built-in)"),
) -> None:
    """Check profiles against the schema, the metric catalog and pysunspec2's models."""
    targets = paths or [BUILTIN_DIR]
    files: list[Path] = []
    for target in targets:
        files.extend(sorted(target.glob("*.yaml")) if target.is_dir() else [target])
    failed = 0
    for file in files:
        try:
            profile = load_profile(file)
        except ProfileError as exc:
            failed += 1
            console.print(f"[red]FAIL[/red] {exc}")
            continue
        console.print(f"[green]ok[/green]   {file}: {profile.name}")
    if failed:
        console.print(f"{failed} of {len(files)} profiles refused")
        raise typer.Exit(1)
