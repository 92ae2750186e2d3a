"""The dataset checks' verdicts on hand-made statistics."""

from dagster import AssetCheckSeverity, MetadataValue

from esk_pipeline.assets.datasets import _accuracy_check
from esk_pipeline.pipeline.splits import DatasetStats, LeakageReport
from esk_pipeline.pipeline.trust.estimate import AccuracyEstimate, AuditProgress


def _stats(
    train: float | None, eval_: float | None = 0.99, *, audit: AuditProgress
) -> DatasetStats:
    def estimate(value: float | None) -> AccuracyEstimate:
        return AccuracyEstimate(estimate=value, low=value, high=value, records=10)

    return DatasetStats(
        train_samples=10,
        eval_samples=10,
        domain_distribution={},
        train_distribution={},
        eval_distribution={},
        input_items=20,
        superseded_labels=0,
        rejected={},
        label_sources={},
        synthetic_samples=0,
        small_domains={},
        small_domain_policy="train_only",
        dropped_domains=[],
        train_only_domains=[],
        capped={},
        balanced={},
        leakage=LeakageReport(passed=True),
        shards={},
        parquet_files={},
        quality_problems=[],
        precision_target=0.95,
        accuracy={"train": estimate(train), "eval": estimate(eval_)},
        audit=audit,
    )


def test_the_accuracy_check_fails_below_the_target_once_the_audit_is_big_enough() -> None:
    passed = _accuracy_check(_stats(0.97, audit=AuditProgress(audited=500, needed=200)))
    assert passed.passed and passed.severity == AssetCheckSeverity.ERROR
    # Settings are text (the UI would plot a number as if it were measured); the audit is a count.
    assert passed.metadata["target"] == MetadataValue.text("0.95")
    assert passed.metadata["audit_needed"] == MetadataValue.text("200")
    assert passed.metadata["audited"] == MetadataValue.int(500)
    failed = _accuracy_check(_stats(0.93, audit=AuditProgress(audited=500, needed=200)))
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR


def test_a_small_audit_is_a_warning_whatever_the_estimate_says() -> None:
    early = _accuracy_check(_stats(0.99, audit=AuditProgress(audited=20, needed=200)))
    assert not early.passed and early.severity == AssetCheckSeverity.WARN
    unknown = _accuracy_check(_stats(None, audit=AuditProgress(audited=500, needed=200)))
    assert not unknown.passed
