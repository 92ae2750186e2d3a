"""The sample frame the tests read (module-scoped, never changed by a test)."""

from __future__ import annotations

import pandas as pd
import pytest

from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import generate_logs
from esk_pipeline_tests.sample_data_tests.support import N_ROWS, TAXONOMY_PATH


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


@pytest.fixture(scope="module")
def logs(taxonomy: Taxonomy) -> pd.DataFrame:
    return generate_logs(taxonomy, n_rows=N_ROWS)


@pytest.fixture(scope="module")
def typed(logs: pd.DataFrame) -> pd.DataFrame:
    """Rows typed by a person (speech transcripts never have emoji, CAPS or layout slips)."""
    return logs[logs["channel"] != "phone_transcript"]
