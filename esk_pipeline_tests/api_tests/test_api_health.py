"""Liveness, readiness, metrics, the page's public files, and the error contract."""

from __future__ import annotations

from fastapi.testclient import TestClient

from esk_pipeline.api import create_app
from esk_pipeline_tests.api_tests.conftest import auth, make_settings, seed_review


def test_building_the_app_opens_nothing(project_env):
    root = project_env / "untouched"
    create_app(make_settings(root))
    assert not root.exists()


def test_healthz_and_public_routes_need_no_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert "проверка разметки" in page.text
    assert client.get("/static/review.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/review.css").status_code == 200


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


def test_readyz_is_503_and_says_why_when_the_taxonomy_is_missing(project_env):
    settings = make_settings(project_env / "bad", taxonomy_path=project_env / "missing.yaml")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["taxonomy"]["ok"] is False
    assert "missing.yaml" in checks["taxonomy"]["detail"]
    assert checks["clickhouse"]["ok"] is True


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
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
