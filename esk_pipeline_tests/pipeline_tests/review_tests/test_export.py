"""Output: the verified-label rows and the export in three formats, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from esk_pipeline.pipeline.fsutil import is_leftover
from esk_pipeline.pipeline.review import VERIFIED_LABEL_COLUMNS
from esk_pipeline.pipeline.spreadsheet import spreadsheet_safe
from esk_pipeline_tests.pipeline_tests.review_tests.support import StoreFactory, label


def test_export_in_three_formats(make: StoreFactory, tmp_path: Path) -> None:
    ds = make()
    ds.add_items([label("a", domain="housing"), label("b", domain="housing"), label("c")])
    ds.get_next(2, "alice")
    ds.submit_review("a", "housing", "alice")
    ds.submit_review("b", "payments", "alice")
    frame = ds.verified_labels()
    assert list(frame.columns) == VERIFIED_LABEL_COLUMNS
    assert str(frame["reviewed_at"].dtype) == "datetime64[ns, UTC]"
    assert frame.to_dict("records")[1] | {"reviewed_at": None} == {
        "row_id": "b",
        "text": "текст b",
        "domain": "payments",
        "predicted_domain": "housing",
        "confidence": 0.4,
        "reviewer_id": "alice",
        "reviewed_at": None,
        "review_status": "corrected",
        "label_source": "reviewer:alice",
        "label_origin": "human_verified",
        "votes": 1,
        "review_reason": "needs_review",
        "predicted_source": None,
        "doubt_pending": False,
    }
    default = ds.export_reviewed()
    assert default == tmp_path / "reviewed" / "reviewed.jsonl"
    readers = {
        "jsonl": lambda p: pd.read_json(p, lines=True),
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
    }
    for fmt, read in readers.items():
        path = ds.export_reviewed(tmp_path / "out" / f"labels.{fmt}")
        back = read(path)
        assert list(back.columns) == VERIFIED_LABEL_COLUMNS
        assert back["domain"].tolist() == ["housing", "payments"]
    assert ds.export_reviewed(tmp_path / "x.txt", fmt="csv").read_text().startswith('"row_id",')
    assert [p for p in (tmp_path / "out").iterdir() if is_leftover(p)] == []


def test_a_failed_export_keeps_the_previous_file_and_leaves_no_temporary(
    make: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = make()
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    ds.submit_review("a", "payments", "alice")
    target = ds.export_reviewed(tmp_path / "out" / "labels.csv")
    before = target.read_bytes()

    def broken_to_csv(frame: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_text("row_id,half a")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        ds.export_reviewed(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["labels.csv"]


def test_verified_labels_is_empty_but_typed_before_any_review(make: StoreFactory) -> None:
    frame = make().verified_labels()
    assert frame.empty and list(frame.columns) == VERIFIED_LABEL_COLUMNS


FORMULAS = [
    '=HYPERLINK("http://evil.example/z","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
]


def test_the_csv_export_makes_formula_cells_inert_and_leaves_jsonl_and_parquet_exact(
    make: StoreFactory, tmp_path: Path
) -> None:
    ds = make()
    rows = [label(f"r{i}") | {"text": text} for i, text in enumerate([*FORMULAS, "обычный"])]
    ds.add_items(rows)
    ds.get_next(len(rows), "alice")
    for row in rows:
        ds.submit_review(row["row_id"], "housing", "alice")
    back = pd.read_csv(ds.export_reviewed(tmp_path / "labels.csv"), keep_default_na=False)
    texts = dict(zip(back["row_id"], back["text"], strict=True))
    assert [texts[f"r{i}"] for i in range(len(FORMULAS))] == ["'" + t for t in FORMULAS]
    assert texts[f"r{len(FORMULAS)}"] == "обычный"
    assert back["confidence"].tolist() == [0.4] * len(rows)
    jsonl = pd.read_json(ds.export_reviewed(tmp_path / "labels.jsonl"), lines=True)
    parquet = pd.read_parquet(ds.export_reviewed(tmp_path / "labels.parquet"))
    for exact in (jsonl, parquet):
        assert sorted(exact["text"]) == sorted(r["text"] for r in rows)


def test_spreadsheet_safe_quotes_every_formula_start_and_keeps_numbers() -> None:
    frame = pd.DataFrame(
        {"text": ["=1", "+1", "-1", "@x", "\t=1", "\r=1", "a=1", None], "n": [-1.5] * 8}
    )
    safe = spreadsheet_safe(frame)
    assert safe["text"].tolist() == [
        "'=1", "'+1", "'-1", "'@x", "'\t=1", "'\r=1", "a=1", None
    ]  # fmt: skip
    assert safe["n"].tolist() == [-1.5] * 8
    assert frame["text"].tolist()[0] == "=1"
