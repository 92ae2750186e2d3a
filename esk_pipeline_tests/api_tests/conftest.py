"""API fixtures: an app built with `create_app(settings)` on a temporary data folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from esk_pipeline.api import create_app
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import (
    AppSettings,
    CacheSettings,
    ClickHouseSettings,
    DataStorageSettings,
    DataWriterSettings,
    ReviewSettings,
    Settings,
)

TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "data" / "taxonomy.yaml"
TOKENS = {
    "alice": "alice-token-1234567890abcd",
    "bob": "bob-token-0987654321abcdef",
    "carol": "carol-token-5678901234abcd",
}
# alice can do everything, carol maintains, bob only reviews (a plain token is a reviewer's).
ROLES = {"alice": "admin", "carol": "maintainer", "bob": "reviewer"}


def auth(reviewer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[reviewer]}"}


def make_settings(
    root: Path, *, tokens: dict[str, object] | None = None, **app: object
) -> Settings:
    """Settings whose every path is under `root` (nothing touches the project's data/)."""
    if tokens is None:
        tokens = {
            owner: token if ROLES[owner] == "reviewer" else {"token": token, "role": ROLES[owner]}
            for owner, token in TOKENS.items()
        }
    return Settings(
        app=AppSettings(
            data_dir=root,
            taxonomy_path=app.pop("taxonomy_path", TAXONOMY_PATH),
            api_tokens=tokens,
            **app,
        ),
        clickhouse=ClickHouseSettings(embedded_path=root / "clickhouse"),
        # The store's second-opinion rule has its own tests; here one decision closes an item.
        review=ReviewSettings(database_url=None, second_opinion_confidence=None),
        data_storage=DataStorageSettings(storage_dir=root / "storage"),
        data_writer=DataWriterSettings(output_dir=root / "artifacts"),
        cache=CacheSettings(dir=root / "cache"),
    )


def label_rows(count: int, *, start: int = 0) -> list[dict[str, object]]:
    """Low-confidence label rows with Russian texts, cycling through the taxonomy's domains."""
    ids = Taxonomy.load(TAXONOMY_PATH).ids
    rows = []
    for i in range(start, start + count):
        first, second = ids[i % len(ids)], ids[(i + 1) % len(ids)]
        rows.append(
            {
                "text": f"Обращение №{i}: не приходит квитанция, прошу разобраться",
                "domain": first,
                "confidence": 0.2 + (i % 5) * 0.05,
                "top_candidates": json.dumps([[first, 0.4], [second, 0.3]]),
                "label_source": "local",
                "status": "labeled",
            }
        )
    return rows


def seed_review(settings: Settings, count: int) -> None:
    """Queue `count` items in the review store the app built from `settings` will open."""
    config = ReviewDatasetConfig(
        data_dir=settings.app.data_dir,
        database_url=None,
        max_queue_size=settings.review.max_queue_size,
        lease_seconds=settings.review.lease_seconds,
        reviews_per_item=settings.review.reviews_per_item,
    )
    with ReviewDataset(config, Taxonomy.load(settings.app.taxonomy_path)) as review:
        review.add_items(label_rows(count))


@pytest.fixture
def settings(project_env: Path) -> Settings:
    return make_settings(project_env / "api")


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
