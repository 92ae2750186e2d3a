"""The registry's commit point: who owns a snapshot number when a write is retried, raced or
late, and which locations can hold a version store at all."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from s3fs.errors import translate_boto_error

from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig, StorageError
from esk_pipeline.pipeline.versions.catalog import KEEP_SNAPSHOTS, Catalog, snapshot_name
from esk_pipeline.pipeline.versions.location import FsspecLocation, LocalLocation, open_location
from esk_pipeline.pipeline.versions.models import Registry


def _s3_error(code: str, status: int) -> OSError:
    reply = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return translate_boto_error(ClientError(reply, "PutObject"))


def test_a_put_retried_after_its_reply_was_lost_keeps_its_number(tmp_path):
    catalog = Catalog(LocalLocation(tmp_path))
    ours = Registry(current="v1.0.0")
    # s3fs retried our put after a timeout: the first try had already stored it.
    assert catalog.location.put_new(snapshot_name(1), ours.to_bytes())
    assert catalog.write(1, ours)
    assert not catalog.write(1, Registry(current="v2.0.0"))  # another writer's bytes lose
    assert catalog.read() == (1, ours)


def test_a_writer_whose_snapshot_was_pruned_meanwhile_does_not_commit_unseen(tmp_path):
    catalog = Catalog(LocalLocation(tmp_path))
    for number in range(1, KEEP_SNAPSHOTS + 3):
        assert catalog.write(number, Registry(current=f"v{number}.0.0"))
    assert 2 not in catalog.numbers()  # pruned: a put_new of its name would succeed
    # A writer that read snapshot 1 long ago writes 2: it must retry from the latest.
    assert not catalog.write(2, Registry(current="late"))
    assert 2 not in catalog.numbers()
    assert catalog.read() == (KEEP_SNAPSHOTS + 2, Registry(current=f"v{KEEP_SNAPSHOTS + 2}.0.0"))


@pytest.mark.parametrize(
    ("code", "status"),
    [("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)],
)
def test_a_conditional_put_refused_by_s3_is_a_lost_race(monkeypatch, code, status):
    location = FsspecLocation("s3://bucket/store")

    def refused(*args, **kwargs):
        raise _s3_error(code, status)

    monkeypatch.setattr(location.fs, "pipe_file", refused)
    assert location.put_new("registry/00000001.json", b"{}") is False


def test_other_s3_errors_of_a_conditional_put_are_raised(monkeypatch):
    location = FsspecLocation("s3://bucket/store")

    def denied(*args, **kwargs):
        raise _s3_error("AccessDenied", 403)

    monkeypatch.setattr(location.fs, "pipe_file", denied)
    with pytest.raises(PermissionError):
        location.put_new("registry/00000001.json", b"{}")


@pytest.mark.parametrize("url", ["memory://store", "gs://bucket/store", "az://box/store"])
def test_a_location_without_an_atomic_create_is_refused_by_name(url):
    with pytest.raises(StorageError, match=f"{url}: a version store needs"):
        open_location(url)
    with pytest.raises(StorageError, match="s3://"):
        DataStorage(DataStorageConfig(storage_dir=url))
