"""Classification through the app's labeler: the offline local model, built once per app."""

from __future__ import annotations

from esk_pipeline.api.schemas import MAX_CLASSIFY_BATCH
from esk_pipeline_tests.api_tests.conftest import auth


def test_classify_one_text_with_the_local_model(client):
    response = client.post(
        "/api/classify",
        json={"text": "как передать показания счётчика воды"},
        headers=auth("carol"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["domain"] == "meter_readings"
    assert body["label_source"] == "local"
    assert body["status"] == "labeled"
    assert 0 <= body["confidence"] <= 1
    assert body["top_candidates"][0][0] == "meter_readings"


def test_classify_a_batch_in_order_and_reuse_the_labeler(app, client):
    texts = ["автобус 42 не ходит по расписанию", "пришла квитанция с огромной суммой"]
    response = client.post("/api/classify/batch", json={"texts": texts}, headers=auth("carol"))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["text"] for r in results] == texts
    assert [r["domain"] for r in results] == ["transport", "payments"]
    labeler = app.state.services.labeler
    client.post("/api/classify", json={"text": "нет света"}, headers=auth("carol"))
    assert app.state.services.labeler is labeler


def test_classify_limits(client):
    too_many = client.post(
        "/api/classify/batch",
        json={"texts": ["текст"] * (MAX_CLASSIFY_BATCH + 1)},
        headers=auth("carol"),
    )
    assert too_many.status_code == 422
    assert too_many.json()["fields"][0]["location"] == "body.texts"
    assert client.post("/api/classify", json={"text": ""}, headers=auth("carol")).status_code == 422
    assert client.post("/api/classify", json={"text": "нет света"}).status_code == 401


def test_texts_are_pii_masked_before_the_labeler_sees_them(client):
    """The labeler (and an LLM endpoint behind it) gets a text as the pipeline would: masked."""
    text = "перезвоните на +7 916 123-45-67, нет горячей воды"
    one = client.post("/api/classify", json={"text": text}, headers=auth("carol"))
    assert one.status_code == 200, one.text
    assert one.json()["text"] == "перезвоните на <PHONE>, нет горячей воды"
    batch = client.post("/api/classify/batch", json={"texts": [text]}, headers=auth("carol"))
    assert batch.json()["results"][0]["text"] == one.json()["text"]
