"""Progress lines of the long steps: in the run's log (the UI) and on `esk-data`'s terminal.

A step builds `step_progress(context, total, "cleaned_texts")` and hands it to the library,
which advances it as texts finish. Each line goes to `context.log.info`, so the run's log in
the UI shows it under its step, and to the Python logger `PROGRESS_LOGGER`, which prints
nothing unless a handler is added: `esk-data` adds one while it runs the steps in its own
process (`runner.run_pipeline(progress=...)`), since Dagster's console logger stays at WARNING
there. That logger does not propagate: Dagster would capture the line a second time (the
`esk_pipeline` loggers are managed in dagster.yaml) and the CLI's root handler would print it.
"""

import logging

from dagster import AssetExecutionContext

from esk_pipeline.pipeline.progress import Progress

PROGRESS_LOGGER = "esk_pipeline.progress"
# A line per step at most this often: the log stays readable however long a step runs.
PROGRESS_SECONDS = 5.0

_terminal = logging.getLogger(PROGRESS_LOGGER)
_terminal.propagate = False
_terminal.setLevel(logging.INFO)  # progress is what a terminal is for, whatever APP_LOG_LEVEL


def step_progress(
    context: AssetExecutionContext, total: int, stage: str, unit: str = "texts"
) -> Progress:
    """A reporter for `total` items of `stage`; its lines go to the run's log and to
    `PROGRESS_LOGGER`."""

    def emit(line: str) -> None:
        context.log.info(line)
        _terminal.info(line)

    return Progress(
        total, description=stage, unit=unit, callback=emit, every_seconds=PROGRESS_SECONDS
    )
