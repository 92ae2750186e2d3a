"""The generator's frame: deterministic, the right columns and dtypes, users who write again,
and the taxonomy's out-of-scope id for empty rows."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import (
    CHANNELS,
    REGIONS,
    generate_log_batches,
    generate_logs,
)
from esk_pipeline_tests.sample_data_tests.support import (
    N_ROWS,
    TAXONOMY_PATH,
    share,
)


def test_same_arguments_give_the_same_frame(taxonomy: Taxonomy, logs: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_logs(taxonomy, n_rows=N_ROWS), logs)


def test_another_seed_gives_other_texts(taxonomy: Taxonomy, logs: pd.DataFrame) -> None:
    other = generate_logs(taxonomy, n_rows=N_ROWS, seed=7)
    assert len(other) == len(logs)
    assert (other["text"] != logs["text"]).mean() > 0.9
    assert (other["ts"] != logs["ts"]).mean() > 0.9


def test_a_large_sample_comes_in_bounded_batches_the_first_one_the_plain_sample(
    taxonomy: Taxonomy,
) -> None:
    batches = list(generate_log_batches(taxonomy, n_rows=650, batch_rows=300, seed=5))
    assert [len(b) for b in batches] == [300, 300, 50]
    pd.testing.assert_frame_equal(batches[0], generate_logs(taxonomy, n_rows=300, seed=5))
    again = list(generate_log_batches(taxonomy, n_rows=650, batch_rows=300, seed=5))
    for batch, same in zip(batches, again, strict=True):
        pd.testing.assert_frame_equal(batch, same)
    # Each batch is its own sample, not a repeat of the first.
    assert (batches[1]["text"] != batches[0]["text"]).mean() > 0.9
    assert len(list(generate_log_batches(taxonomy, n_rows=0))) == 0


def test_result_does_not_depend_on_hash_randomisation(logs: pd.DataFrame) -> None:
    script = (
        "import pandas as pd\n"
        "from esk_pipeline.pipeline.taxonomy import Taxonomy\n"
        "from esk_pipeline.sample_data import generate_logs\n"
        f"frame = generate_logs(Taxonomy.load({str(TAXONOMY_PATH)!r}), n_rows={N_ROWS})\n"
        "print(int(pd.util.hash_pandas_object(frame, index=True).sum()))\n"
    )
    for hash_seed in ("1", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
            cwd=TAXONOMY_PATH.parents[1],
        )
        assert int(done.stdout) == int(pd.util.hash_pandas_object(logs, index=True).sum())


def test_columns_and_dtypes(logs: pd.DataFrame) -> None:
    assert list(logs.columns) == [
        "text",
        "ts",
        "user_id",
        "channel",
        "region",
        "session_id",
        "true_domain",
    ]
    assert len(logs) == N_ROWS
    assert str(logs["ts"].dtype) == "datetime64[ns, UTC]"
    for column in ("text", "user_id", "channel", "region", "session_id", "true_domain"):
        assert logs[column].map(type).eq(str).all(), column
    assert logs["user_id"].str.fullmatch(r"u\d{6}").all()
    assert set(logs["channel"]) == set(CHANNELS)
    assert set(logs["region"]) <= set(REGIONS)
    assert logs["region"].nunique() >= 5


def test_some_users_write_several_times(logs: pd.DataFrame) -> None:
    per_user = logs["user_id"].value_counts()
    assert per_user.max() >= 5
    assert 0.2 < share(per_user > 1) < 0.8
    # a user's region does not change between messages
    assert logs.groupby("user_id")["region"].nunique().max() == 1


def test_empty_and_tiny_requests(taxonomy: Taxonomy) -> None:
    empty = generate_logs(taxonomy, n_rows=0)
    assert list(empty.columns) == list(generate_logs(taxonomy, n_rows=1).columns)
    assert str(empty["ts"].dtype) == "datetime64[ns, UTC]"
    assert len(generate_logs(taxonomy, n_rows=1)) == 1
    with pytest.raises(ValueError):
        generate_logs(taxonomy, n_rows=-1)
    with pytest.raises(ValueError):
        generate_logs(taxonomy, days=0)
