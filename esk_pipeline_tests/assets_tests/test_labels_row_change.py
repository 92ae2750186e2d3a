"""A labels day stored with another label row (a column added since) is labelled again, not
kept: downstream checks every labels day against today's contract."""

from esk_pipeline.pipeline.labeler import frames, snapshot
from esk_pipeline_tests.assets_tests.test_labels_refit import (  # noqa: F401
    _decide,
    _decisions,
    _refresh,
    classify_calls,
    folder,
)


def test_a_new_label_column_relabels_the_stored_days(folder, classify_calls, monkeypatch):  # noqa: F811
    _decide(folder, _decisions(10))
    _refresh(folder)
    wider = (*frames.LABEL_COLUMNS, "llm_reason")
    monkeypatch.setattr(frames, "LABEL_COLUMNS", wider)
    monkeypatch.setattr(snapshot, "LABEL_COLUMNS", wider)
    again = _refresh(folder)
    assert classify_calls == [4, 4, 4, 4]
    assert all(m["labelled"] == "relabelled: model changed" for m in again.values())
