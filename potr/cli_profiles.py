"""``potr profiles list|show|validate|diff|settings``: device profiles (device types as
data) and grid-code profiles (a region's required settings, with provenance)."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.table import Table

from device_profiles import (
    BUILTIN_DIR,
    DeviceProfile,
    ProfileError,
    load_profile,
    load_profiles,
)
from device_profiles.grid_code import (
    GRID_CODE_DIR,
    STANDARDS_FILE,
    GridCodeError,
    GridCodeProfile,
    ResolvedValue,
    diff_grid_codes,
    load_grid_codes,
)
from device_profiles.grid_code_sunspec import (
    SUNSPEC_MAP_FILE,
    device_settings,
    load_sunspec_map,
)
from potr.console import CallConsole

profiles_app = typer.Typer(
    help="Device profiles (device types) and grid-code profiles (region settings)",
    no_args_is_help=True,
)
console = CallConsole()

_DIR = typer.Option(BUILTIN_DIR, "--dir", help="folder of *.yaml device profiles")
_GC_DIR = typer.Option(GRID_CODE_DIR, "--grid-codes", help="folder of grid-code profiles")


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")


def _load_dir(directory: Path) -> dict[str, DeviceProfile]:
    try:
        return load_profiles(directory)
    except ProfileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@profiles_app.command("list")
def list_profiles(directory: Path = _DIR, grid_codes: Path = _GC_DIR) -> None:
    """List device profiles (name, kind, models, manufacturer) and grid-code profiles
    (id, region, standard, categories, parent, verified or not)."""
    profiles = _load_dir(directory)
    table = Table("name", "kind", "models", "manufacturer / model")
    for name, profile in profiles.items():
        models = " ".join(str(m) for m in profile.models)
        if profile.vendor_map is not None:
            models += " + vendor map"
        table.add_row(name, profile.kind, models, f"{profile.manufacturer} / {profile.model}")
    console.print(table)
    codes = _load_grid_codes(grid_codes)
    gc = Table("grid code", "region", "standard", "categories", "extends", "values", title=None)
    for code in codes.values():
        cats = "/".join(c for c in (code.normal_category, code.abnormal_category) if c)
        gc.add_row(
            code.id,
            code.region.upper(),
            code.standard,
            cats or "-",
            code.extends or "-",
            _verified_label(code),
        )
    console.print(gc)


@profiles_app.command("show")
def show_profile(name: str, directory: Path = _DIR, grid_codes: Path = _GC_DIR) -> None:
    """Print one device profile (by name, or a path to a YAML file) as checked YAML, or
    one grid-code profile (by id) with every value's provenance, unverified ones marked."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml") and (grid_codes / f"{name}.yaml").exists():
        _show_grid_code(_load_grid_codes(grid_codes), name)
        return
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
    targets = paths or [BUILTIN_DIR, GRID_CODE_DIR]
    files: list[Path] = []
    failed = 0
    for target in targets:
        folder = target if target.is_dir() else target.parent
        if (folder / STANDARDS_FILE).exists():
            failed += _validate_grid_codes(folder)
        else:
            files.extend(sorted(target.glob("*.yaml")) if target.is_dir() else [target])
    for file in files:
        try:
            profile = load_profile(file)
        except ProfileError as exc:
            failed += 1
            console.print(f"[red]FAIL[/red] {exc}")
            continue
        console.print(f"[green]ok[/green]   {file}: {profile.name}")
    if failed:
        console.print(f"{failed} profile files refused")
        raise typer.Exit(1)


# ----- grid-code profiles -----------------------------------------------------------------
def _load_grid_codes(directory: Path) -> dict[str, GridCodeProfile]:
    try:
        return load_grid_codes(directory)
    except GridCodeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _verified_label(code: GridCodeProfile) -> str:
    if not code.unverified:
        return "[green]verified[/green]"
    return f"[yellow]UNVERIFIED ({len(code.unverified_keys)} of {len(code.values)})[/yellow]"


def _confidence(value: ResolvedValue | None) -> str:
    if value is None:
        return ""
    if value.verified:
        return "verified"
    return f"[yellow]{value.provenance.confidence.upper()}[/yellow]"


def _show_grid_code(codes: dict[str, GridCodeProfile], name: str) -> None:
    code = codes[name]
    console.print(f"[bold]{code.id}[/bold] — {code.title}")
    lineage = " → ".join((*code.lineage, code.id))
    console.print(f"region {code.region.upper()} · standard {code.standard} · {lineage}")
    cats = [c for c in (code.normal_category, code.abnormal_category) if c]
    if cats:
        console.print(f"IEEE 1547 categories: normal {cats[0]}, abnormal {cats[-1]}")
    console.print(f"nominal {code.nominal_v:g} V, {code.nominal_hz:g} Hz · {_verified_label(code)}")
    if code.applies_to:
        console.print(f"applies to: {code.applies_to}")
    if code.registration is not None:
        reg = code.registration
        console.print(
            f"[bold]registration data[/bold] (never a rollout): mode "
            f"{reg.self_consumption_mode or '-'}, certified anti-export device "
            f"{'required' if reg.anti_export_device_required else 'not required'}"
            + (f" ({reg.anti_export_certification})" if reg.anti_export_certification else "")
        )
    table = Table("key", "value", "confidence", "source · clause", "from")
    for key, value in sorted(code.values.items()):
        prov = value.provenance
        origin = Path(value.file).stem
        source = f"{prov.source} · {prov.clause}" + (f" ({value.note})" if value.note else "")
        table.add_row(key, value.shown(), _confidence(value), source, origin)
    console.print(table)


def _validate_grid_codes(folder: Path) -> int:
    try:
        codes = load_grid_codes(folder)
        sunspec = folder / SUNSPEC_MAP_FILE.name
        if sunspec.exists():
            load_sunspec_map(sunspec)
    except GridCodeError as exc:
        console.print(f"[red]FAIL[/red] {exc}")
        return 1
    for code in codes.values():
        mark = " [yellow](unverified values)[/yellow]" if code.unverified else ""
        console.print(f"[green]ok[/green]   {code.file}: {code.id}{mark}")
    return 0


@profiles_app.command("diff")
def diff_profiles(a: str, b: str, grid_codes: Path = _GC_DIR) -> None:
    """The values two grid-code profiles set differently, with each side's provenance."""
    codes = _load_grid_codes(grid_codes)
    for name in (a, b):
        if name not in codes:
            console.print(f"[red]no grid-code profile {name!r} in {grid_codes}[/red]")
            raise typer.Exit(1)
    changes = diff_grid_codes(codes[a], codes[b])
    if not changes:
        console.print(f"{a} and {b} set the same values")
        return
    table = Table("key", a, b, f"{b}: source · clause")
    for change in changes:
        left = change.a.shown() if change.a else "-"
        right = change.b.shown() if change.b else "-"
        if change.a is not None and not change.a.verified:
            left += f" {_confidence(change.a)}"
        if change.b is not None and not change.b.verified:
            right += f" {_confidence(change.b)}"
        prov = change.b.provenance if change.b else (change.a.provenance if change.a else None)
        table.add_row(change.key, left, right, f"{prov.source} · {prov.clause}" if prov else "")
    console.print(table)


@profiles_app.command("settings")
def settings_for(
    grid_code: str,
    device: str,
    phases: int = typer.Option(1, help="phases of the site (export limits per phase)"),
    directory: Path = _DIR,
    grid_codes: Path = _GC_DIR,
) -> None:
    """The config settings that put GRID_CODE into effect on a DEVICE profile (7xx models
    preferred, else 1xx), as YAML, and the functions left out with the reason."""
    codes = _load_grid_codes(grid_codes)
    devices = _load_dir(directory)
    if grid_code not in codes or device not in devices:
        console.print(f"[red]unknown grid code {grid_code!r} or device profile {device!r}[/red]")
        raise typer.Exit(1)
    result = device_settings(codes[grid_code], devices[device], phases=phases)
    data = {
        "grid_code": result.grid_code,
        "device_profile": result.device_profile,
        "unverified": codes[grid_code].unverified,
        "settings": result.settings,
        "functions": result.functions,
        "unmapped": result.unmapped,
    }
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
