"""The review endpoints: identity from the token, lease rules, decisions, numbers, export."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig, ReviewReason
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.settings import ReviewSettings
from esk_pipeline_tests.api_tests.conftest import (
    TOKENS,
    auth,
    label_rows,
    make_settings,
    seed_review,
)


@pytest.fixture
def seeded(settings, client):
    seed_review(settings, 6)
    return client


def _lease(client, reviewer: str, count: int = 1) -> list[dict]:
    response = client.get(f"/api/review/next?count={count}", headers=auth(reviewer))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKENS['alice']}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_protected_endpoints_answer_401_json_with_a_challenge(client, headers):
    for method, path in [
        ("GET", "/api/review/next"),
        ("POST", "/api/review/items/x/undo"),
        ("GET", "/api/review/export"),
        ("GET", "/api/taxonomy"),
    ]:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        body = response.json()
        assert body["error"] == "unauthorized"
        assert "token" in body["detail"]


def test_no_configured_tokens_means_no_access(project_env):
    from fastapi.testclient import TestClient

    from esk_pipeline.api import create_app
    from esk_pipeline_tests.api_tests.conftest import make_settings

    app = create_app(make_settings(project_env / "none", tokens={}))
    with TestClient(app) as client:
        response = client.get("/api/me", headers={"Authorization": "Bearer "})
        assert response.status_code == 401
        response = client.get("/api/me", headers={"Authorization": "Bearer x"})
        assert response.status_code == 401


def test_identity_comes_from_the_token(client):
    assert client.get("/api/me", headers=auth("bob")).json() == {"reviewer_id": "bob"}


def test_taxonomy_lists_domains_with_russian_names(client):
    body = client.get("/api/taxonomy", headers=auth("alice")).json()
    names = {d["id"]: d["name"] for d in body["domains"]}
    assert names["meter_readings"] == "Передача показаний счётчиков"
    assert len(body["fingerprint"]) == 16


def test_a_leased_item_is_not_handed_to_another_reviewer(seeded):
    alice = {item["id"] for item in _lease(seeded, "alice", 3)}
    bob = {item["id"] for item in _lease(seeded, "bob", 6)}
    assert len(alice) == 3 and len(bob) == 3
    assert alice.isdisjoint(bob)
    # Asking again returns the same leases (idempotent), not new items.
    assert {item["id"] for item in _lease(seeded, "alice", 3)} == alice


def test_submit_approve_and_correct_then_stats_count_my_work(seeded):
    first, second = _lease(seeded, "alice", 2)
    approved = seeded.post(
        f"/api/review/items/{first['id']}/submit",
        json={"domain": first["predicted_domain"]},
        headers=auth("alice"),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    other = next(c[0] for c in second["top_candidates"] if c[0] != second["predicted_domain"])
    corrected = seeded.post(
        f"/api/review/items/{second['id']}/submit", json={"domain": other}, headers=auth("alice")
    ).json()
    assert corrected["status"] == "corrected"
    assert corrected["corrected_domain"] == other
    assert corrected["reviewer_id"] == "alice"

    stats = seeded.get("/api/review/stats", headers=auth("alice")).json()
    assert stats["reviewer_id"] == "alice"
    assert stats["reviewer_done_today"] == 2
    assert stats["queue_length"] == 4
    assert seeded.get("/api/review/stats", headers=auth("bob")).json()["reviewer_done_today"] == 0

    quality = seeded.get("/api/review/quality", headers=auth("bob")).json()
    assert (quality["decided"], quality["approved"], quality["corrected"]) == (2, 1, 1)
    agreement = seeded.get("/api/review/agreement", headers=auth("bob")).json()
    assert agreement["items_with_overlap"] == 0


def test_submitting_an_item_someone_else_holds_is_refused(seeded):
    (item,) = _lease(seeded, "alice")
    response = seeded.post(
        f"/api/review/items/{item['id']}/submit",
        json={"domain": item["predicted_domain"]},
        headers=auth("bob"),
    )
    assert response.status_code == 409
    assert response.json()["error"] == "not_leased"


def test_unknown_domain_and_unknown_item_are_clear_errors(seeded):
    (item,) = _lease(seeded, "alice")
    response = seeded.post(
        f"/api/review/items/{item['id']}/submit", json={"domain": "no_such"}, headers=auth("alice")
    )
    assert response.status_code == 422
    assert response.json()["error"] == "unknown_domain"
    response = seeded.post(
        "/api/review/items/missing/submit", json={"domain": "payments"}, headers=auth("alice")
    )
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_item"


def test_invalid_body_is_a_json_422_naming_the_field(seeded):
    response = seeded.post(
        "/api/review/items/x/submit", json={"domain": "Not A Domain!"}, headers=auth("alice")
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["fields"][0]["location"] == "body.domain"


def test_skip_release_and_undo(seeded):
    first, second = _lease(seeded, "alice", 2)
    skipped = seeded.post(f"/api/review/items/{first['id']}/skip", headers=auth("alice"))
    assert skipped.status_code == 200
    assert skipped.json()["status"] == "skipped"
    # A skipped item never comes back to the one who skipped it, but others get it.
    assert first["id"] not in {i["id"] for i in _lease(seeded, "alice", 6)}
    released = seeded.post(f"/api/review/items/{second['id']}/release", headers=auth("alice"))
    assert released.status_code == 200
    assert released.json()["lease_holder"] is None

    undo = {"decision_id": skipped.json()["decision_id"]}
    undone = seeded.post(f"/api/review/items/{first['id']}/undo", json=undo, headers=auth("alice"))
    assert undone.status_code == 200
    assert undone.json()["id"] == first["id"]
    assert undone.json()["lease_holder"] == "alice"
    missing = seeded.post("/api/review/items/nope/undo", json=undo, headers=auth("alice"))
    assert missing.status_code == 404
    assert (
        seeded.post(f"/api/review/items/{first['id']}/undo", headers=auth("bob")).status_code == 422
    )


def test_ten_concurrent_undos_of_one_decision_undo_only_that_one(seeded):
    items = _lease(seeded, "alice", 4)
    decided = [
        seeded.post(
            f"/api/review/items/{item['id']}/submit",
            json={"domain": "transport"},
            headers=auth("alice"),
        ).json()
        for item in items
    ]
    last = decided[-1]
    assert [d["decision_id"] for d in decided] == sorted({d["decision_id"] for d in decided})

    def undo_last_decision(_: int) -> int:
        return seeded.post(
            f"/api/review/items/{last['id']}/undo",
            json={"decision_id": last["decision_id"]},
            headers=auth("alice"),
        ).status_code

    with ThreadPoolExecutor(10) as pool:
        assert set(pool.map(undo_last_decision, range(10))) == {200}
    export = seeded.get("/api/review/export?format=jsonl", headers=auth("alice")).text
    still_decided = {json.loads(line)["row_id"] for line in export.splitlines() if line}
    assert still_decided == {d["id"] for d in decided[:-1]}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_streams_the_reviewed_items(seeded, fmt):
    (item,) = _lease(seeded, "alice")
    seeded.post(
        f"/api/review/items/{item['id']}/submit",
        json={"domain": "transport"},
        headers=auth("alice"),
    )
    response = seeded.get(f"/api/review/export?format={fmt}", headers=auth("bob"))
    assert response.status_code == 200
    assert f".{fmt}" in response.headers["content-disposition"]
    if fmt == "jsonl":
        records = [json.loads(line) for line in response.text.splitlines() if line]
    elif fmt == "csv":
        records = pd.read_csv(io.StringIO(response.text)).to_dict("records")
    else:
        records = pd.read_parquet(io.BytesIO(response.content)).to_dict("records")
    assert len(records) == 1
    assert records[0]["domain"] == "transport"
    assert records[0]["reviewer_id"] == "alice"
    assert records[0]["text"] == item["text"]


def test_export_rejects_an_unknown_format(seeded):
    response = seeded.get("/api/review/export?format=xml", headers=auth("alice"))
    assert response.status_code == 422


def test_audit_items_reach_the_reviewer_without_the_models_guess(settings, client):
    """The audit measures the model: its guess, confidence and candidates stay on the server,
    which still tells an agreeing decision (approved) from a disagreeing one (corrected)."""
    rows = label_rows(2)
    for row in rows:
        row["review_reason"] = "audit"
    config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
    with ReviewDataset(config, Taxonomy.load(settings.app.taxonomy_path)) as review:
        review.add_items(rows)
        leased = _lease(client, "alice", 2)
        guesses = {item["id"]: review.get_item(item["id"]).predicted_domain for item in leased}
    assert all(guesses.values())
    assert {item["reason"] for item in leased} == {"audit"}
    for item in leased:
        assert item["predicted_domain"] is None
        assert item["confidence"] == 0 and item["top_candidates"] == []
    first, second = (item["id"] for item in leased)
    agreed = client.post(
        f"/api/review/items/{first}/submit", json={"domain": guesses[first]}, headers=auth("alice")
    )
    assert agreed.json()["status"] == "approved"
    assert agreed.json()["predicted_domain"] is None
    other = next(c for c in Taxonomy.load(settings.app.taxonomy_path).ids if c != guesses[second])
    disagreed = client.post(
        f"/api/review/items/{second}/submit", json={"domain": other}, headers=auth("alice")
    )
    assert disagreed.json()["status"] == "corrected"
    undone = client.post(
        f"/api/review/items/{second}/undo",
        json={"decision_id": disagreed.json()["decision_id"]},
        headers=auth("alice"),
    ).json()
    assert undone["id"] == second and undone["predicted_domain"] is None


def _blind(item: dict) -> bool:
    guess = item["predicted_domain"], item["confidence"], item["top_candidates"]
    return guess == (None, 0, [])


def test_an_audit_item_stays_blind_through_its_second_opinion_adjudication_and_undo(
    project_env,
):
    """A lone correction of an audit item waits for a second reviewer, who decides between the
    model and the correction: the guess would anchor that decision as much as the first."""
    from fastapi.testclient import TestClient

    from esk_pipeline.api import create_app

    settings = make_settings(project_env / "api")
    settings = settings.model_copy(
        update={"review": ReviewSettings(database_url=None, second_opinion_confidence=0.0)}
    )
    [row] = label_rows(1)
    row["review_reason"] = "audit"
    taxonomy = Taxonomy.load(settings.app.taxonomy_path)
    with ReviewDataset(
        ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None), taxonomy
    ) as review:
        review.add_items([row])
    guess = str(row["domain"])
    other = next(d for d in taxonomy.ids if d != guess)

    def post(reviewer: str, item_id: str, action: str, body: dict | None = None) -> dict:
        response = client.post(
            f"/api/review/items/{item_id}/{action}", json=body, headers=auth(reviewer)
        )
        assert response.status_code == 200, response.text
        return response.json()

    with TestClient(create_app(settings)) as client:
        [item] = _lease(client, "alice")
        corrected = post("alice", item["id"], "submit", {"domain": other})
        assert (corrected["status"], corrected["waiting_for"]) == ("pending", "second_opinion")
        [second] = _lease(client, "bob")  # the second opinion
        assert second["id"] == item["id"] and _blind(second)
        assert (second["reason"], second["waiting_for"]) == ("audit", "second_opinion")
        contradicted = post("bob", item["id"], "submit", {"domain": guess})
        assert contradicted["needs_adjudication"] and _blind(contradicted)
        [adjudication] = _lease(client, "carol")
        assert adjudication["reason"] == "audit" and _blind(adjudication)
        post("carol", item["id"], "release")
        waiting = post("bob", item["id"], "undo", {"decision_id": contradicted["decision_id"]})
        assert waiting["waiting_for"] == "second_opinion" and _blind(waiting)
        post("bob", item["id"], "release")
        undone = post("alice", item["id"], "undo", {"decision_id": corrected["decision_id"]})
        assert (undone["reason"], undone["waiting_for"], undone["reviews"]) == ("audit", None, 0)
        assert _blind(undone)


def test_a_doubted_audit_decision_reaches_the_second_reviewer_without_the_guess(settings, client):
    """A doubted decision stands on the open item meanwhile; an approval of an audit text is
    the model's guess itself, so handing it out would show the re-checker the guess."""
    [row] = label_rows(1)
    row["review_reason"] = "audit"
    config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
    with ReviewDataset(config, Taxonomy.load(settings.app.taxonomy_path)) as review:
        review.add_items([row])
        [item] = _lease(client, "alice")
        client.post(
            f"/api/review/items/{item['id']}/submit",
            json={"domain": row["domain"]},
            headers=auth("alice"),
        )
        review.request_second_opinion([item["id"]], ReviewReason.POSSIBLE_LABEL_ERROR)
        assert review.get_item(item["id"]).corrected_domain == row["domain"]
    [recheck] = _lease(client, "bob")
    assert (recheck["id"], recheck["waiting_for"]) == (item["id"], "possible_label_error")
    assert _blind(recheck)
    assert (recheck["corrected_domain"], recheck["reviewer_id"]) == (None, None)
    assert recheck["review_timestamp"] is None


def test_a_doubted_decision_reaches_the_re_checker_without_that_decision(settings, client):
    """Outside the audit too: the re-check is a second opinion, not a vote on the first."""
    [row] = label_rows(1)
    config = ReviewDatasetConfig(data_dir=settings.app.data_dir, database_url=None)
    with ReviewDataset(config, Taxonomy.load(settings.app.taxonomy_path)) as review:
        review.add_items([row])
        [item] = _lease(client, "alice")
        assert item["predicted_domain"] == row["domain"]  # not an audit item: the guess shows
        client.post(
            f"/api/review/items/{item['id']}/submit",
            json={"domain": row["domain"]},
            headers=auth("alice"),
        )
        review.request_second_opinion([item["id"]], ReviewReason.POSSIBLE_LABEL_ERROR)
        assert review.get_item(item["id"]).reviewer_id == "alice"
    [recheck] = _lease(client, "bob")
    assert (recheck["id"], recheck["waiting_for"]) == (item["id"], "possible_label_error")
    assert recheck["predicted_domain"] == row["domain"]
    assert (recheck["corrected_domain"], recheck["reviewer_id"]) == (None, None)
    assert recheck["review_timestamp"] is None
