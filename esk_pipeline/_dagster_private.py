"""The one place that uses Dagster's private API (`dagster._core`): queueing a run from code.

Dagster has no public call that puts a run of a code location on the instance's run queue
without a webserver (its GraphQL client needs one), which is what `esk-data` and the API do for
a day's run. These names change between Dagster releases without notice, so they are imported
here only; `test_killed_demo.py` queues a day's run through `queue_run` and fails when an
upgrade moves them.
"""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from dagster import DagsterInstance, DagsterRun
from dagster._core.errors import DagsterRunAlreadyExists
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

__all__ = ["queue_run"]


def queue_run(
    instance: DagsterInstance,
    *,
    module_name: str,
    location_name: str,
    job_name: str,
    run_id: str,
    tags: dict[str, str],
) -> DagsterRun:
    """Create and submit a run of `job_name` with `run_id` through the instance's run
    coordinator, as `dagster job launch` would. A run with that id already made (another
    process raced us) is returned as it is."""
    try:
        with _code_location_workspace(instance, module_name, location_name) as workspace:
            _create_run(instance, workspace, location_name, job_name, run_id, tags)
            return instance.submit_run(run_id, workspace)
    except DagsterRunAlreadyExists:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run


@contextlib.contextmanager
def _code_location_workspace(
    instance: DagsterInstance, module_name: str, location_name: str
) -> Iterator[BaseWorkspaceRequestContext]:
    """The code location loaded in-process under its workspace name, so the daemon finds the
    submitted run's job in its own copy of the location."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=module_name,
            attribute="defs",
            working_directory=str(Path.cwd()),
        ),
        location_name=location_name,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context.create_request_context()


def _create_run(
    instance: DagsterInstance,
    workspace: BaseWorkspaceRequestContext,
    location_name: str,
    job_name: str,
    run_id: str,
    tags: dict[str, str],
) -> DagsterRun:
    location = workspace.get_code_location(location_name)
    (repository,) = location.get_repositories().values()
    job = repository.get_full_job(job_name)
    plan = location.get_execution_plan(
        job, {}, step_keys_to_execute=None, known_state=None, instance=instance
    ).execution_plan_snapshot
    return instance.create_run(
        job_name=job_name,
        run_id=run_id,
        run_config={},
        resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**job.tags, **tags},
        job_snapshot=job.job_snapshot,
        execution_plan_snapshot=plan,
        parent_job_snapshot=job.parent_job_snapshot,
        remote_job_origin=job.get_remote_origin(),
        job_code_origin=job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )
