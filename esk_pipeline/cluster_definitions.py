"""The code location of the scale-out profile (deploy/): the project's definitions, with every
step of a run executed by a Celery worker, so a run's steps spread over machines.

Broker and result backend come from DAGSTER_CELERY_BROKER_URL and DAGSTER_CELERY_BACKEND_URL
(Redis); needs the `deploy` extra. The embedded default keeps `esk_pipeline.definitions`.
"""

from dagster import Definitions, definitions
from dagster_celery import celery_executor

from esk_pipeline.definitions import build_defs
from esk_pipeline.settings import get_settings

celery = celery_executor.configured(
    {
        "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
        "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    }
)


@definitions
def defs() -> Definitions:
    return Definitions.merge(build_defs(get_settings()), Definitions(executor=celery))
