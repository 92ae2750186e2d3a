"""Asset checks that look at a stored result after it was made (not from inside its asset)."""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from esk_pipeline.resources.stores import DatasetStoreResource


@asset_check(
    asset="dataset_versions",
    blocking=True,
    description="The committed version re-hashes to the checksums in the version registry.",
)
def stored_version_verifies(
    dataset_versions: dict, dataset_store: DatasetStoreResource
) -> AssetCheckResult:
    problems = dataset_store.storage().verify(dataset_versions["version"])
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "version": dataset_versions["version"],
            "problems": len(problems),
            "first_problems": "; ".join(problems[:5]) or "none",
        },
    )
