"""`esk-data`: the project CLI for what Dagster's own CLI does not cover.

A plain click group; add commands with `@main.command()` or `main.add_command(...)`. Errors
from the library print one line (`Error: ...`) and exit with status 1, never a traceback.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import click

from esk_pipeline import configs
from esk_pipeline.cli._output import CommandGroup, ProgressLines
from esk_pipeline.cli.settings import settings_command
from esk_pipeline.cli.versions import versions
from esk_pipeline.pipeline.splits import DatasetStats, record_counts, trust_summary
from esk_pipeline.pipeline.versions import DataStorage
from esk_pipeline.settings import Settings, get_settings


@click.group(cls=CommandGroup)
def main() -> None:
    """ESK dataset pipeline tools."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    get_settings().apply_log_level()


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
    lines = ProgressLines()
    inserted = seed_sample_logs(
        settings, n_rows=rows, seed=seed, replace=replace, progress=lines.progress
    )
    lines.end()
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
    lines = ProgressLines()
    inserted = seed_sample_logs(settings, n_rows=rows, seed=seed, progress=lines.progress)
    if inserted:
        lines.echo(f"seeded {inserted} sample log rows")
    _build(settings, lines)


@main.command()
@click.option(
    "--relabel",
    is_flag=True,
    help="Refit the labelling model on every decision and label every day again.",
)
def build(relabel: bool) -> None:
    """Rebuild everything stale, through dataset_versions and its checks.

    Reads and cleans the days whose logs changed, labels the days whose cleaned texts or
    labelling model changed (the model refits on the decisions once enough are new), applies
    what people decided, plans the review queue and commits a dataset version. The same logs,
    taxonomy, decisions, labelling-model snapshot and settings give the same version: a build
    with nothing new makes none.
    """
    _build(get_settings(), ProgressLines(), relabel=relabel)


def _build(settings: Settings, lines: ProgressLines, *, relabel: bool = False) -> None:
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
            result = run_pipeline(
                instance,
                settings=settings,
                log=lines.echo,
                progress=lines.progress,
                relabel=relabel,
            )
        except PipelineRunError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            lines.end()
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


main.add_command(versions)
main.add_command(settings_command)

if __name__ == "__main__":
    main()
