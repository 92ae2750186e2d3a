"""What the review tests share: a small taxonomy, a clock the test moves, label rows, configs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy

TAXONOMY = Taxonomy(
    domains=[
        Domain(id="housing", name="ЖКХ"),
        Domain(id="payments", name="Оплата"),
        Domain(id="transport", name="Транспорт"),
        Domain(id="other", name="Другое"),
    ]
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

StoreFactory = Callable[..., ReviewDataset]


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def label(
    rid: str, domain: str | None = "housing", confidence: float = 0.4, **extra: object
) -> dict:
    return {
        "row_id": rid,
        "text": f"текст {rid}",
        "domain": domain,
        "confidence": confidence,
        **extra,
    }


def review_config(
    data_dir: Path, database_url: str | None, **overrides: object
) -> ReviewDatasetConfig:
    fields: dict[str, object] = {
        # Second opinions have tests of their own; elsewhere a decision stands alone.
        "second_opinion_confidence": None,
        "max_queue_size": 10_000,
        "lease_seconds": 600,
        "reviews_per_item": 1,
    }
    return ReviewDatasetConfig(
        data_dir=data_dir,
        database_url=SecretStr(database_url) if database_url else None,
        **(fields | overrides),
    )
