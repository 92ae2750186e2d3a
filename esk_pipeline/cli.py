"""`esk-data`: the project CLI for what Dagster's own CLI does not cover.

A plain click group; add commands with `@main.command()` or `main.add_command(...)`. Errors
from the library print one line (`Error: ...`) and exit with status 1, never a traceback.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from esk_pipeline import configs
from esk_pipeline.pipeline.log_source import LogSourceError
from esk_pipeline.pipeline.splits import (
    DatasetQualityError,
    DatasetStats,
    record_counts,
    trust_summary,
)
from esk_pipeline.pipeline.taxonomy import TaxonomyError
from esk_pipeline.pipeline.versions import (
    DatasetVersion,
    DataStorage,
    DataStorageConfig,
    StorageError,
    VersionStatus,
)
from esk_pipeline.settings import Settings, get_settings

# Failures a user can act on: shown as one line, not as a traceback.
USER_ERRORS = (
    StorageError,
    DatasetQualityError,
    TaxonomyError,
    LogSourceError,
    OSError,
    ValueError,
)


class _Group(click.Group):
    """A click group that turns library errors into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
def main() -> None:
    """ESK dataset pipeline tools."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    get_settings().apply_log_level()


@main.group(cls=_Group)
@click.option(
    "--storage-dir",
    default=None,
    help="Version store folder or URL such as s3://bucket/prefix "
    "(default: DATA_STORAGE_STORAGE_DIR).",
)
@click.pass_context
def versions(ctx: click.Context, storage_dir: str | None) -> None:
    """Dataset versions: list, show, diff, tag, checkout, verify, export, import."""
    overrides = {} if storage_dir is None else {"storage_dir": storage_dir}
    ctx.obj = configs.storage_config(get_settings(), **overrides)


def _storage(ctx: click.Context) -> DataStorage:
    return DataStorage(ctx.find_object(DataStorageConfig))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def _print_json(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


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
        _print_json(found)
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
            printable(v.description[:50]),
        ]
        for v in found
    ]
    headers = ["version", "status", "created (UTC)", "train", "eval", "tags", "description"]
    click.echo(_table(headers, rows))


@versions.command()
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one version (a version, a tag, "current" or "latest")."""
    v = _storage(ctx).get_version(ref)
    if as_json:
        _print_json(v)
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
    click.echo(_table(["domain", "train", "eval", "total"], rows))


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
        _print_json(result)
        return
    click.echo(result.summary)
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
        click.echo(_table(["domain", "before", "after", "delta", "train", "eval"], changed))
    if result.relabelled_examples:
        click.echo("")
        rows = [[e.row_id, e.old_domain, e.new_domain] for e in result.relabelled_examples]
        click.echo(_table(["relabelled row_id", "old", "new"], rows))


@versions.command()
@click.argument("version")
@click.argument("name")
@click.pass_context
def tag(ctx: click.Context, version: str, name: str) -> None:
    """Name VERSION with tag NAME (e.g. production)."""
    v = _storage(ctx).tag_version(version, name)
    click.echo(f"{name} -> {v.version}")


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
        _print_json({"ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            click.echo(problem)
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
    storage = _storage(ctx)
    before = storage.get_stats()["current"]
    v = storage.import_version(file, version_tag=version_tag)
    if not checkout and before and before != v.version:
        storage.checkout(before)
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


rows_option = click.option("--rows", default=6000, show_default=True, help="Sample log rows.")
seed_option = click.option("--seed", default=42, show_default=True, help="Generator seed.")


@main.command()
@rows_option
@seed_option
@click.option("--replace", is_flag=True, help="Drop the table's rows first.")
def seed(rows: int, seed: int, replace: bool) -> None:
    """Fill the esk_logs table with seeded synthetic ESK requests (a week, 12 domains)."""
    from esk_pipeline.pipeline.log_source import LogSource
    from esk_pipeline.runner import seed_sample_logs

    settings = get_settings()
    inserted = seed_sample_logs(settings, n_rows=rows, seed=seed, replace=replace)
    where = LogSource(settings.clickhouse).description
    if inserted:
        click.echo(f"inserted {inserted} sample rows into {settings.clickhouse.table} ({where})")
    else:
        click.echo(f"{settings.clickhouse.table} already has rows ({where}); --replace to reseed")


@main.command()
@rows_option
@seed_option
def demo(rows: int, seed: int) -> None:
    """Seed sample logs if the table is empty, then build the dataset (`esk-data build`)."""
    from esk_pipeline.runner import seed_sample_logs

    settings = get_settings()
    inserted = seed_sample_logs(settings, n_rows=rows, seed=seed)
    if inserted:
        click.echo(f"seeded {inserted} sample log rows")
    _build(settings)


@main.command()
def build() -> None:
    """Rebuild everything stale, through dataset_versions and its checks.

    Reads and cleans the days whose logs changed, then relabels every day with what people
    decided, plans the review queue and commits a dataset version. The same logs, taxonomy,
    decisions and settings give the same version: a build with nothing new makes none.
    """
    _build(get_settings())


def _build(settings: Settings) -> None:
    import warnings

    from dagster import BetaWarning, DagsterInstance

    # Single-run backfills, observable source assets and data versions are chosen knowingly.
    warnings.filterwarnings("ignore", category=BetaWarning)

    from esk_pipeline.pipeline.review import ReviewDataset
    from esk_pipeline.pipeline.taxonomy import Taxonomy
    from esk_pipeline.runner import PipelineRunError, ensure_dagster_home, run_pipeline

    home = ensure_dagster_home(Path.cwd())
    with DagsterInstance.get() as instance:
        try:
            result = run_pipeline(instance, settings=settings, log=click.echo)
        except PipelineRunError as exc:
            raise click.ClickException(str(exc)) from exc
    storage = DataStorage(configs.storage_config(settings))
    version = storage.get_version(str(result["version"]))
    stats = _dataset_stats(version.path)
    click.echo("")
    click.echo(f"dataset version {version.version} ({version.status.value})")
    click.echo(f"  where:   {version.path}")
    click.echo(f"  records: {record_counts(stats)}")
    click.echo(
        "  domains: "
        + (
            ", ".join(
                f"{d} {n}"
                for d, n in sorted(version.domain_distribution.items(), key=lambda kv: -kv[1])
            )
            or "none yet (nothing is trusted before people review the queue)"
        )
    )
    if not result.get("new_version", True):
        click.echo("  (nothing changed since the last build: no new version)")
    for key in ("previous_version", "added", "removed", "relabelled"):
        if key in result:
            click.echo(f"  {key}: {result[key]}")
    click.echo("how far to trust it:")
    for line in trust_summary(stats)[1:]:  # the first line is the record counts above
        click.echo(f"  {line}")
    with ReviewDataset(
        config=configs.review_config(settings),
        taxonomy=Taxonomy.load(settings.app.taxonomy_path),
    ) as review:
        waiting = review.stats().queue_length
    click.echo(f"review queue: {waiting} items waiting for people")
    click.echo(
        "  (one item per group of near-identical texts: a decision settles the whole group, "
        "so the queue can be shorter than 'waiting for review', which counts texts)"
    )
    click.echo(f"  reviewer page: {reviewer_page_hint()}")
    click.echo("  after reviewing, rebuild: .venv/bin/esk-data build")
    click.echo(f"runs are in the Dagster UI: DAGSTER_HOME={home} .venv/bin/dagster dev")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`): text from an imported archive must not
    drive the terminal (ANSI escapes, carriage returns)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def reviewer_page_hint() -> str:
    """How to start the API, with a freshly generated token (never a placeholder to paste)."""
    tokens = json.dumps({"alice": secrets.token_urlsafe()})
    return (
        f"APP_API_TOKENS='{tokens}' .venv/bin/uvicorn esk_pipeline.api:app, "
        "then http://127.0.0.1:8000/"
    )


def _dataset_stats(version_path: Path) -> DatasetStats:
    """The writer's statistics a version keeps in its metadata.json."""
    metadata = json.loads((version_path / "metadata.json").read_text(encoding="utf-8"))
    return DatasetStats.model_validate(metadata["dataset"]["stats"])


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
def dev(dagster_args: tuple[str, ...]) -> None:
    """`dagster dev` with DAGSTER_HOME set up in the project (extra arguments pass through)."""
    import os
    import signal
    import sys

    from esk_pipeline.runner import ensure_dagster_home

    ensure_dagster_home(Path.cwd())
    # The dagster script installed beside this interpreter, whether or not the venv is on PATH.
    dagster = str(Path(sys.executable).with_name("dagster"))
    # Started from a script, dagster dev ignores Ctrl-C unless SIGINT is back to its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Dagster 1.13 marks `dagster dev` as superseded by `dg dev`, which needs the dg project
    # layout (dagster-dg-cli); `dagster dev` serves this workspace the same, so its notice is
    # silenced here (that message only; the child processes inherit the filter).
    quiet = "ignore:Function `dev_command` is superseded:FutureWarning"
    warnings_env = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    os.environ["PYTHONWARNINGS"] = warnings_env
    os.execvp(dagster, [dagster, "dev", "-w", "workspace.yaml", *dagster_args])


if __name__ == "__main__":
    main()
