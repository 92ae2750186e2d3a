"""Dataset versions over HTTP: list, show, diff, tag, checkout, verify and download."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path

import pytest

from esk_pipeline.api.downloads import temporary_file_response
from esk_pipeline.api.errors import without_server_paths
from esk_pipeline.pipeline.versions import DataStorage, DataStorageConfig
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
        "/api/versions/v1.0.0/tags", json={"tag": "production"}, headers=auth("carol")
    )
    assert tagged.status_code == 200
    assert "production" in tagged.json()["tags"]
    current = client.post("/api/versions/production/checkout", headers=auth("carol"))
    assert current.json()["version"] == "v1.0.0"
    verified = client.get("/api/versions/current/verify", headers=auth("carol")).json()
    assert verified == {"version": "v1.0.0", "ok": True, "problems": []}

    download = client.get("/api/versions/v1.1.0/export", headers=auth("carol"))
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
    reserved = client.post(
        "/api/versions/v1.0.0/tags", json={"tag": "latest"}, headers=auth("carol")
    )
    assert reserved.status_code == 409
    assert "invalid tag" in reserved.json()["detail"]
    assert client.get("/api/versions").status_code == 401


def test_stats_are_typed_and_show_no_server_path(app, client, two_versions, settings):
    response = client.get("/api/versions/stats", headers=auth("alice"))
    assert response.status_code == 200
    stats = response.json()
    assert set(stats) == {
        "total_versions",
        "by_status",
        "archived_versions",
        "total_size_mb",
        "logical_size_mb",
        "current",
        "latest",
        "tags",
    }
    assert (stats["total_versions"], stats["latest"], stats["archived_versions"]) == (
        2,
        "v1.1.0",
        0,
    )
    assert str(settings.data_storage.storage_dir) not in response.text
    operation = app.openapi()["paths"]["/api/versions/stats"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/StorageStatsOut"}


def test_storage_errors_show_no_server_path(client, settings):
    storage_dir = settings.data_storage.storage_dir
    storage_dir.mkdir(parents=True)
    (storage_dir / "versions.json").write_text('{"versions": "not a list"}', encoding="utf-8")
    response = client.get("/api/versions", headers=auth("alice"))
    assert response.status_code == 409
    assert response.json()["error"] == "storage_refused"
    assert response.json()["detail"].startswith("versions.json: unreadable registry")
    assert str(settings.app.data_dir) not in response.text


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("/srv/esk/storage/versions.json: unreadable", "versions.json: unreadable"),
        ("/srv/esk/storage: locked", "storage: locked"),
        (
            "v1: archive /srv/esk/storage/archive/v1.tar.gz is damaged",
            "v1: archive archive/v1.tar.gz is damaged",
        ),
        ("/srv/esk-export-x/v1.zip: no such file", "v1.zip: no such file"),
        ("invalid tag 'x': not current/latest", "invalid tag 'x': not current/latest"),
        ("cannot reach http://host:8123/db", "cannot reach http://host:8123/db"),
    ],
)
def test_without_server_paths(message, shown):
    assert without_server_paths(message, [Path("/srv/esk/storage"), Path("/srv/esk")]) == shown


def test_downloads_leave_no_temporary_files(client, two_versions, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert client.get("/api/versions/v1.0.0/export?format=zip", headers=auth("carol")).is_success
    assert client.get("/api/review/export", headers=auth("carol")).is_success
    missing = client.get("/api/versions/v9.9.9/export", headers=auth("carol"))
    assert missing.status_code == 404
    assert list(scratch.iterdir()) == []


def test_a_failed_download_removes_its_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    written: list[Path] = []

    def fail(folder: Path) -> Path:
        written.append(folder)
        (folder / "partial.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        temporary_file_response(fail, prefix="esk-test-", media_type="application/octet-stream")
    assert written and not written[0].exists()
