"""Stored labels days are kept on object storage too: the footer read (`stored_day`) and the
labelling model's snapshot (`state_file`) work on an s3:// base (moto's server)."""

from upath import UPath

from esk_pipeline_tests.assets_tests.test_labels_refit import (  # noqa: F401
    _decide,
    _decisions,
    _refresh,
    classify_calls,
    folder,
)
from esk_pipeline_tests.s3 import fresh_bucket, s3_server  # noqa: F401


def test_a_refresh_on_s3_keeps_the_days_it_labelled(folder, classify_calls, s3_server, monkeypatch):  # noqa: F811
    bucket = fresh_bucket(s3_server, monkeypatch) + "/values"
    _decide(folder, _decisions(10))
    for local in folder.rglob("*.parquet"):  # the cleaned texts and the decisions
        UPath(f"{bucket}/{local.relative_to(folder)}").write_bytes(local.read_bytes())
    first = _refresh(bucket)
    assert all(m["labelled"] == "labelled: a new day" for m in first.values())
    assert UPath(f"{bucket}/labels/labelling_model.json").exists()
    again = _refresh(bucket)
    assert len(classify_calls) == 2  # the second refresh labelled nothing
    for day, metadata in again.items():
        assert metadata["labelled"] == f"reused (model {first[day]['labelling_model']})"
        assert metadata["data_version"] == first[day]["data_version"]
