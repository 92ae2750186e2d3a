"""Liveness, readiness, metrics, the page's public files, and the error contract."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from esk_pipeline.api import create_app
from esk_pipeline.api.routers import health
from esk_pipeline.pipeline.fsutil import SCRATCH_MARK
from esk_pipeline.pipeline.log_source import LogSource
from esk_pipeline.pipeline.review.store import ReviewDataset
from esk_pipeline.settings import ReviewSettings
from esk_pipeline_tests.api_tests.conftest import auth, make_settings, seed_review


def test_building_the_app_opens_nothing(project_env):
    root = project_env / "untouched"
    create_app(make_settings(root))
    assert not root.exists()


def test_healthz_and_public_routes_need_no_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn." not in docs.text  # everything the page loads comes from the app itself
    script = re.search(r'src="([^"]+swagger-ui-bundle\.js)"', docs.text).group(1)
    assert "SwaggerUIBundle" in client.get(script).text
    page = client.get("/")
    assert page.status_code == 200
    assert "проверка разметки" in page.text
    assert client.get("/static/review.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/review.css").status_code == 200
    icon = client.get("/favicon.ico")  # browsers ask for it unprompted
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header


def test_static_files_are_an_allow_list(client):
    for path in ("/static/..%2Fapp.py", "/static/index.html.bak", "/static/%2e%2e"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_readyz_reports_each_dependency(settings, client):
    body = client.get("/readyz").json()
    assert body["ready"] is True
    assert set(body["checks"]) == {"taxonomy", "review_store", "clickhouse"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_and_logs_why_without_showing_server_paths(project_env, caplog):
    settings = make_settings(project_env / "bad", taxonomy_path=project_env / "missing.yaml")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["taxonomy"] == {"ok": False, "detail": "failed; the reason is in the server log"}
    assert checks["clickhouse"] == {"ok": True, "detail": "ok"}
    assert str(project_env) not in response.text  # the route is public
    assert "missing.yaml" in caplog.text


def test_metrics_count_routes_by_template_and_review_decisions(settings, client):
    seed_review(settings, 2)
    (item,) = client.get("/api/review/next", headers=auth("alice")).json()
    client.post(
        f"/api/review/items/{item['id']}/submit",
        json={"domain": item["predicted_domain"]},
        headers=auth("alice"),
    )
    client.get("/api/review/next", headers={"Authorization": "Bearer nope"})
    text = client.get("/metrics").text
    assert (
        'esk_api_requests_total{method="POST",route="/api/review/items/{item_id}/submit",'
        'status="200"} 1.0' in text
    )
    assert 'route="/api/review/next",status="401"} 1.0' in text
    assert 'esk_review_decisions_total{decision="approved"} 1.0' in text
    assert 'esk_review_queue_items{status="approved"} 1.0' in text
    assert "esk_api_request_duration_seconds_bucket" in text


def test_made_up_http_methods_do_not_grow_the_metrics(client):
    # Anyone may send any method token to a public path; each must not become a label value
    # (a time series the server keeps for good).
    for i in range(50):
        client.request(f"MADEUP{i}", "/healthz")
    text = client.get("/metrics").text
    series = [line for line in text.splitlines() if line.startswith("esk_api_requests_total{")]
    assert not any("MADEUP" in line for line in series)
    assert 'esk_api_requests_total{method="other",route="/healthz",status="405"} 50.0' in text


def _decisions(client, decision: str) -> float:
    prefix = f'esk_review_decisions_total{{decision="{decision}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def _submit(client, reviewer: str, item_id: str, domain: str) -> None:
    response = client.post(
        f"/api/review/items/{item_id}/submit", json={"domain": domain}, headers=auth(reviewer)
    )
    assert response.status_code == 200, response.text


def test_a_resubmitted_decision_is_counted_once(settings, client):
    seed_review(settings, 1)
    (item,) = client.get("/api/review/next", headers=auth("alice")).json()
    _submit(client, "alice", item["id"], item["predicted_domain"])
    _submit(client, "alice", item["id"], item["predicted_domain"])  # a retried request
    assert _decisions(client, "approved") == 1


def test_with_overlap_only_the_deciding_vote_is_counted(project_env):
    settings = make_settings(project_env / "overlap")
    settings.review = ReviewSettings(database_url=None, reviews_per_item=2)
    seed_review(settings, 1)
    with TestClient(create_app(settings)) as client:
        (item,) = client.get("/api/review/next", headers=auth("alice")).json()
        other = next(c[0] for c in item["top_candidates"] if c[0] != item["predicted_domain"])
        _submit(client, "alice", item["id"], other)  # one vote of two: the item stays open
        assert _decisions(client, "corrected") == 0
        (same,) = client.get("/api/review/next", headers=auth("bob")).json()
        assert same["id"] == item["id"]
        _submit(client, "bob", item["id"], other)
        assert _decisions(client, "corrected") == 1
        _submit(client, "bob", item["id"], other)
        assert _decisions(client, "corrected") == 1
        assert _decisions(client, "approved") == 0


def test_unexpected_errors_are_generic_json_without_a_traceback(app, caplog):
    def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "the server failed on this request; see the server log",
    }
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text


def test_unknown_path_is_json_404(client):
    response = client.get("/api/nothing-here", headers=auth("alice"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    # Without a token nothing under /api/ answers more than 401, not even whether it exists.
    assert client.get("/api/nothing-here").status_code == 401
    assert client.get("/nothing-here").status_code == 404


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_readyz_asks_clickhouse_once_and_memory_stays_flat(client, monkeypatch):
    pings = []
    real_ping = LogSource.ping
    monkeypatch.setattr(LogSource, "ping", lambda self: pings.append(1) or real_ping(self))
    for _ in range(20):  # warm up the app's collaborators and the first ping
        assert client.get("/readyz").status_code == 200
    before = _rss_mb()
    for _ in range(1000):
        assert client.get("/readyz").json()["checks"]["clickhouse"]["ok"] is True
    assert len(pings) == 1
    assert _rss_mb() - before < 20


def test_the_server_removes_scratch_left_by_a_killed_server_at_start_up(project_env):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    left = Path(tempfile.gettempdir()) / f"{SCRATCH_MARK}{child.pid}-upload-test"
    (left / "part").mkdir(parents=True)
    try:
        with TestClient(create_app(make_settings(project_env / "restart"))):
            assert not left.exists()
    finally:
        shutil.rmtree(left, ignore_errors=True)


def test_probes_and_scrapes_do_not_count_the_whole_review_store_each_time(
    settings, client, monkeypatch
):
    seed_review(settings, 2)
    counts = []
    real_stats = ReviewDataset.stats
    monkeypatch.setattr(
        ReviewDataset, "stats", lambda self, *a, **k: counts.append(1) or real_stats(self, *a, **k)
    )
    for _ in range(50):
        assert client.get("/readyz").json()["checks"]["review_store"]["ok"] is True
    assert counts == []  # readiness asks the store a constant-time question
    for _ in range(50):
        assert 'esk_review_queue_items{status="pending"} 2.0' in client.get("/metrics").text
    assert len(counts) == 1  # one recount per QUEUE_GAUGE_SECONDS, not one per scrape
    monkeypatch.setattr(health, "QUEUE_GAUGE_SECONDS", 0.0)
    client.get("/metrics")
    assert len(counts) == 2
