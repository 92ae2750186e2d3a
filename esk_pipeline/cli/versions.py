"""`esk-data versions ...`: list, show, diff, tag, status, checkout, verify, export, import,
commit."""

from __future__ import annotations

from pathlib import Path

import click

from esk_pipeline import configs
from esk_pipeline.cli._output import CommandGroup, json_option, print_json, printable, table
from esk_pipeline.pipeline.versions import (
    DatasetVersion,
    DataStorage,
    DataStorageConfig,
    VersionStatus,
)
from esk_pipeline.settings import get_settings


@click.group(cls=CommandGroup)
@click.option(
    "--storage-dir",
    default=None,
    help="Version store folder or URL such as s3://bucket/prefix "
    "(default: DATA_STORAGE_STORAGE_DIR).",
)
@click.pass_context
def versions(ctx: click.Context, storage_dir: str | None) -> None:
    """Dataset versions: list, show, diff, tag, status, checkout, verify, export, import, commit."""
    overrides = {} if storage_dir is None else {"storage_dir": storage_dir}
    ctx.obj = configs.storage_config(get_settings(), **overrides)


def _storage(ctx: click.Context) -> DataStorage:
    return DataStorage(ctx.find_object(DataStorageConfig))


def _version_line(v: DatasetVersion) -> str:
    tags = f" [{', '.join(v.tags)}]" if v.tags else ""
    return f"{v.version} ({v.status.value}){tags}: {v.train_samples} train, {v.eval_samples} eval"


@versions.command("list")
@click.option("--status", type=click.Choice([s.value for s in VersionStatus]), default=None)
@json_option
@click.pass_context
def list_versions(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List versions, oldest first."""
    storage = _storage(ctx)
    found = storage.list_versions(status=status)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no versions")
        return
    current = storage.get_stats()["current"]
    rows = [
        [
            ("* " if v.version == current else "  ") + v.version,
            v.status.value,
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            v.train_samples,
            v.eval_samples,
            ",".join(v.tags),
            v.description[:50],
        ]
        for v in found
    ]
    headers = ["version", "status", "created (UTC)", "train", "eval", "tags", "description"]
    click.echo(table(headers, rows))


@versions.command()
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one version (a version, a tag, "current" or "latest")."""
    v = _storage(ctx).get_version(ref)
    if as_json:
        print_json(v)
        return
    click.echo(_version_line(v))
    created_by = printable(v.created_by)
    click.echo(f"created {v.created_at.isoformat()} by {created_by}; parent {v.parent or '-'}")
    if v.description:
        click.echo(f"description: {printable(v.description)}")
    click.echo(f"location: {v.path or v.archive}")
    rows = [
        [d, v.train_distribution.get(d, 0), v.eval_distribution.get(d, 0), n]
        for d, n in v.domain_distribution.items()
    ]
    click.echo(table(["domain", "train", "eval", "total"], rows))


@versions.command()
@click.argument("a")
@click.argument("b")
@click.option("--examples", default=10, show_default=True, help="Example records per change.")
@json_option
@click.pass_context
def diff(ctx: click.Context, a: str, b: str, examples: int, as_json: bool) -> None:
    """Record-level changes from version A to version B."""
    result = _storage(ctx).compare_versions(a, b, examples=examples)
    if as_json:
        print_json(result)
        return
    click.echo(printable(result.summary))  # it names domains, which come from the records
    changed = [
        [
            d,
            c.before,
            c.after,
            f"{c.delta:+d}",
            f"{c.train_before}->{c.train_after}",
            f"{c.eval_before}->{c.eval_after}",
        ]
        for d, c in result.domain_changes.items()
        if c.delta or c.train_before != c.train_after
    ]
    if changed:
        click.echo("")
        click.echo(table(["domain", "before", "after", "delta", "train", "eval"], changed))
    if result.relabelled_examples:
        click.echo("")
        rows = [[e.row_id, e.old_domain, e.new_domain] for e in result.relabelled_examples]
        click.echo(table(["relabelled row_id", "old", "new"], rows))


@versions.command()
@click.argument("version")
@click.argument("name")
@click.pass_context
def tag(ctx: click.Context, version: str, name: str) -> None:
    """Name VERSION with tag NAME (e.g. production)."""
    v = _storage(ctx).tag_version(version, name)
    click.echo(f"{name} -> {v.version}")


@versions.command("status")
@click.argument("ref")
@click.argument(
    "status",
    type=click.Choice([s.value for s in VersionStatus if s is not VersionStatus.ARCHIVED]),
)
@click.pass_context
def set_status(ctx: click.Context, ref: str, status: str) -> None:
    """Mark version REF draft, stable or deprecated (the store archives old versions itself)."""
    click.echo(_version_line(_storage(ctx).set_status(ref, status)))


@versions.command()
@click.argument("ref")
@click.pass_context
def checkout(ctx: click.Context, ref: str) -> None:
    """Point `current` at a version (restores an archived one)."""
    path = _storage(ctx).checkout(ref)
    click.echo(f"current -> {path.name} ({path})")


@versions.command()
@click.argument("ref", required=False)
@json_option
@click.pass_context
def verify(ctx: click.Context, ref: str | None, as_json: bool) -> None:
    """Re-hash files against the registry; exit status 1 when anything changed."""
    storage = _storage(ctx)
    problems = storage.verify(ref)
    if as_json:
        print_json({"ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            click.echo(printable(problem))
    else:
        checked = ref or f"{storage.get_stats()['total_versions']} version(s)"
        click.echo(f"OK: {checked} verified")
    if problems:
        ctx.exit(1)


@versions.command("export")
@click.argument("ref")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_version(ctx: click.Context, ref: str, file: Path) -> None:
    """Write version REF to FILE (.tar.gz or .zip) with a manifest and checksums."""
    out = _storage(ctx).export_version(ref, file)
    click.echo(f"exported to {out}")


@versions.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as", "version_tag", default=None, help="Import under another version name.")
@click.option("--checkout", is_flag=True, help="Also make the imported version current.")
@click.pass_context
def import_version(ctx: click.Context, file: Path, version_tag: str | None, checkout: bool) -> None:
    """Add a version from an export FILE after verifying its checksums. `current` stays where
    it was (unless --checkout, or the store had no version yet)."""
    v = _storage(ctx).import_version(file, version_tag=version_tag, checkout=checkout)
    click.echo(f"imported {_version_line(v)}")


@versions.command()
@click.argument("dataset_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--version", "version_tag", default=None, help="Semantic version; default: bump.")
@click.option("--description", default="")
@click.option(
    "--status",
    type=click.Choice([s.value for s in VersionStatus if s is not VersionStatus.ARCHIVED]),
    default=VersionStatus.DRAFT.value,
)
@click.option("--created-by", default="cli")
@click.pass_context
def commit(
    ctx: click.Context,
    dataset_dir: Path,
    version_tag: str | None,
    description: str,
    status: str,
    created_by: str,
) -> None:
    """Commit a DataWriter dataset folder as a new version."""
    v = _storage(ctx).commit_dataset(
        dataset_dir, version_tag, description=description, status=status, created_by=created_by
    )
    click.echo(f"committed {_version_line(v)}" + (f" at {v.path}" if v.path else ""))
