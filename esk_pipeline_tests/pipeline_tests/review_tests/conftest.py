"""Review store fixtures: `make` opens SQLite stores; `store` runs a test on SQLite and, when
PostgreSQL binaries and psycopg are present, again on a throwaway PostgreSQL cluster started
once for the whole review test package (each test gets a database of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esk_pipeline.pipeline.review import ReviewDataset
from esk_pipeline_tests.pipeline_tests.review_tests.support import (
    TAXONOMY,
    FakeClock,
    StoreFactory,
    review_config,
)
from esk_pipeline_tests.postgres import fresh_postgres_database, running_postgres


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def review_postgres_server() -> Iterator[str]:
    with running_postgres() as url:
        yield url


def _factory(
    data_dir: Path, url: str | None, clock: FakeClock
) -> tuple[StoreFactory, list[ReviewDataset]]:
    opened: list[ReviewDataset] = []

    def factory(**overrides: object) -> ReviewDataset:
        dataset = ReviewDataset(review_config(data_dir, url, **overrides), TAXONOMY, clock=clock)
        opened.append(dataset)
        return dataset

    return factory, opened


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[StoreFactory]:
    """SQLite stores under tmp_path; keyword arguments override the config."""
    factory, opened = _factory(tmp_path, None, clock)
    yield factory
    for dataset in opened:
        dataset.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[StoreFactory]:
    """Like `make`, once on SQLite and once on PostgreSQL."""
    url = None
    if request.param == "postgresql":
        url = fresh_postgres_database(request.getfixturevalue("review_postgres_server"))
    factory, opened = _factory(tmp_path, url, clock)
    yield factory
    for dataset in opened:
        dataset.close()
