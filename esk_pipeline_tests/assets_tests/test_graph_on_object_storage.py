"""The dataset steps with the version store and asset values on S3 (moto's server over real
HTTP): the small form of deploy/cluster-smoke.sh for the version store."""

from __future__ import annotations

from esk_pipeline_tests.assets_tests.graph import run_graph, storage
from esk_pipeline_tests.s3 import fresh_bucket, s3_server  # noqa: F401


def _data(version) -> dict[str, str]:
    return {n: f.sha256 for n, f in version.files.items() if n.endswith(".jsonl")}


def test_the_graph_commits_to_a_store_on_s3_what_it_commits_to_a_folder(
    tmp_path,
    s3_server,  # noqa: F811
    monkeypatch,
):
    bucket = fresh_bucket(s3_server, monkeypatch)
    on_s3 = run_graph(
        tmp_path / "s3",
        n_rows=800,
        DATA_STORAGE_STORAGE_DIR=f"{bucket}/storage",
        APP_ASSETS_URL=f"{bucket}/values",
    )
    on_disk = run_graph(tmp_path / "disk", n_rows=800)
    remote, local = storage(on_s3), storage(on_disk)
    [version] = remote.list_versions()
    assert on_s3["summary"]["version"] == version.version and version.path is None
    assert _data(version) == _data(local.list_versions()[-1])
    assert remote.verify() == []
    assert remote.location.listing("staged") == {}  # the staged manifest became the version
    assert not (tmp_path / "s3" / "storage").exists()
