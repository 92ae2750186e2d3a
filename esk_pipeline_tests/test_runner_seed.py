"""`seed_sample_logs` inserts its sample in batches; a seed cut short finishes on the next call
instead of passing for a seeded table."""

import pytest

from esk_pipeline import runner
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.settings import get_settings


def test_a_seed_killed_half_way_is_completed_by_the_next_seed(project_env, monkeypatch) -> None:
    settings = get_settings()
    insert = LogSource.insert_logs
    calls = []

    def killed_at_the_second_batch(self, frame, **kwargs):
        calls.append(len(frame))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between two batches
        return insert(self, frame, **kwargs)

    monkeypatch.setattr(LogSource, "insert_logs", killed_at_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        runner.seed_sample_logs(settings, n_rows=600, batch_rows=200)
    source = LogSource(settings.clickhouse)
    assert sum(source.day_counts().values()) == 200

    monkeypatch.setattr(LogSource, "insert_logs", insert)
    assert runner.seed_sample_logs(settings, n_rows=600, batch_rows=200) == 600
    assert sum(source.day_counts().values()) == 600  # the first batch is not there twice
    # A finished seed is not repeated, and neither is any table with rows of its own.
    assert runner.seed_sample_logs(settings, n_rows=600, batch_rows=200) == 0
    assert runner.seed_sample_logs(settings, n_rows=900, batch_rows=200) == 0
    assert sum(source.day_counts().values()) == 600
