"""Dataset versions over HTTP: list, show, diff, tag, checkout, verify and download."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from esk_pipeline.pipeline.data_storage import DataStorage, DataStorageConfig
from esk_pipeline_tests.api_tests.conftest import auth


def _write_split(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in records.items():
        lines = [
            json.dumps(
                {
                    "row_id": rid,
                    "text": f"текст {rid}",
                    "domain": domain,
                    "label_source": "local",
                    "confidence": 0.9,
                    "is_synthetic": False,
                    "source_row_id": None,
                },
                ensure_ascii=False,
            )
            for rid, domain in rows
        ]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "train.jsonl", folder / "eval.jsonl"


@pytest.fixture
def two_versions(settings, tmp_path):
    storage = DataStorage(DataStorageConfig(storage_dir=settings.data_storage.storage_dir))
    first = _write_split(
        tmp_path / "v1",
        {"train": [("a", "payments"), ("b", "transport")], "eval": [("c", "waste")]},
    )
    second = _write_split(
        tmp_path / "v2",
        {"train": [("a", "payments"), ("b", "roads"), ("d", "waste")], "eval": [("c", "waste")]},
    )
    storage.commit_version(*first, description="first")
    storage.commit_version(*second, description="second")


def test_list_show_and_diff(client, two_versions):
    versions = client.get("/api/versions", headers=auth("alice")).json()
    assert [v["version"] for v in versions] == ["v1.0.0", "v1.1.0"]
    assert "path" not in versions[0]
    shown = client.get("/api/versions/latest", headers=auth("alice")).json()
    assert shown["version"] == "v1.1.0"
    assert shown["train_samples"] == 3

    diff = client.get("/api/versions/v1.0.0/diff/v1.1.0", headers=auth("alice")).json()
    assert (diff["added"], diff["removed"], diff["relabelled"]) == (1, 0, 1)
    assert diff["relabelled_examples"][0]["new_domain"] == "roads"
    assert diff["summary"]


def test_tag_checkout_verify_and_download(client, two_versions):
    tagged = client.post(
        "/api/versions/v1.0.0/tags", json={"tag": "production"}, headers=auth("bob")
    )
    assert tagged.status_code == 200
    assert "production" in tagged.json()["tags"]
    current = client.post("/api/versions/production/checkout", headers=auth("bob"))
    assert current.json()["version"] == "v1.0.0"
    verified = client.get("/api/versions/current/verify", headers=auth("bob")).json()
    assert verified == {"version": "v1.0.0", "ok": True, "problems": []}

    download = client.get("/api/versions/v1.1.0/export", headers=auth("bob"))
    assert download.status_code == 200
    assert "v1.1.0.tar.gz" in download.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(download.content)) as archive:
        names = archive.getnames()
    assert "manifest.json" in names
    assert "data/train.jsonl" in names


def test_unknown_version_and_bad_tag_are_clear_errors(client, two_versions):
    missing = client.get("/api/versions/v9.9.9", headers=auth("alice"))
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown_version"
    reserved = client.post("/api/versions/v1.0.0/tags", json={"tag": "latest"}, headers=auth("bob"))
    assert reserved.status_code == 409
    assert "invalid tag" in reserved.json()["detail"]
    assert client.get("/api/versions").status_code == 401
