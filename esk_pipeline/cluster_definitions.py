"""The code location of the scale-out profile (deploy/): the project's definitions, with every
step of a run executed by a Celery worker, so a run's steps spread over machines.

Broker and result backend come from DAGSTER_CELERY_BROKER_URL and DAGSTER_CELERY_BACKEND_URL
(Redis); needs the `deploy` extra. The embedded default keeps `esk_pipeline.definitions`.

A worker that dies while it holds a step costs a retry, not the run: a step's task is
acknowledged only when it has finished (`task_acks_late`), and Redis hands an unacknowledged
task to another worker once `visibility_timeout` has passed since its delivery. That timeout
must be longer than the slowest step, or a step still running is handed out a second time
(steps are safe to run twice, as the loop is a fixpoint, but it is work done twice). A step
whose pool process died under a living worker (killed for memory, say) is sent again after
Celery's retry delay (`task_retry_on_worker_lost`), at most the task's `max_retries` (3)
times, then fails: a step that always kills its process cannot circle forever. Were sending
that retry to fail, the task goes back on the queue (`task_reject_on_worker_lost`). The
workers read the same settings from deploy/celery.yaml.
"""

from typing import Any

from dagster import Definitions, definitions
from dagster_celery import celery_executor

from esk_pipeline.definitions import build_defs
from esk_pipeline.settings import get_settings

# Longer than the slowest step (a day's labelling through an LLM endpoint); shorter than run
# monitoring's max runtime (4 h), so a lost step is redelivered before its run is failed.
VISIBILITY_TIMEOUT_SECONDS = 3600
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_retry_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker holds no task it has not started
    "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
}

celery = celery_executor.configured(
    {
        "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
        "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
        "config_source": CELERY_SETTINGS,
    }
)


@definitions
def defs() -> Definitions:
    return Definitions.merge(build_defs(get_settings()), Definitions(executor=celery))
