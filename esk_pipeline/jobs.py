"""The jobs: one day's ETL and labels, the ETL of many days, the taxonomy's observation, and the
dataset refresh. Runs that call an LLM carry its endpoint's tag, so the deploy profile's run
queue can cap the runs per endpoint."""

from dagster import AssetSelection, define_asset_job

from esk_pipeline.resources.llm import llm_endpoint_tags
from esk_pipeline.runs import DAILY_JOB, DATASET_JOB, DATASET_REFRESH_TAG, ETL_JOB, TAXONOMY_JOB
from esk_pipeline.settings import Settings


def build_jobs(settings: Settings) -> list:
    """The four asset jobs (Dagster does not export the type `define_asset_job` returns)."""
    return [
        define_asset_job(
            DAILY_JOB,
            # The taxonomy and the human decisions are observed first (observations are events, so
            # days in parallel never race): labels record the versions they were made with.
            selection=AssetSelection.assets(
                "taxonomy",
                "verified_labels",
                "raw_logs",
                "cleaned_texts",
                "rejected_texts",
                "labels",
            ),
            description="ETL and labelling of one day of logs.",
            tags=llm_endpoint_tags(settings, "labeler"),
        ),
        define_asset_job(
            ETL_JOB,
            selection=AssetSelection.assets("raw_logs", "cleaned_texts", "rejected_texts"),
            description="Reads and cleans days of logs (no labelling): the first half of a build.",
        ),
        define_asset_job(
            TAXONOMY_JOB,
            selection=AssetSelection.assets("taxonomy"),
            description="Records the taxonomy file's content hash as the taxonomy's data version.",
        ),
        define_asset_job(
            DATASET_JOB,
            # Everything the human decisions feed: the labels (their local model learns from the
            # decisions), the trust verdict, the queue, the splits and the version with its checks.
            # Run it over every labelled day (`runs.range_tags`): the same decisions then give the
            # same version, whoever starts it.
            selection=AssetSelection.assets("taxonomy", "verified_labels")
            | AssetSelection.assets("labels").downstream(),
            description="Rebuilds the dataset from the latest human decisions, through "
            "dataset_versions and its checks.",
            # One refresh at a time, whoever queues it (the instance's run queue limits the tag).
            tags={DATASET_REFRESH_TAG: "1", **llm_endpoint_tags(settings, "augmenter")},
        ),
    ]
