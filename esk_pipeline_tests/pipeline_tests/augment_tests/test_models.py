"""The report's records: the synthetic sample row shape."""

from __future__ import annotations

from esk_pipeline.pipeline.augment import AugmentationReport

SYNTHETIC_ROW_COLUMNS = [
    "row_id",
    "text",
    "domain",
    "source_text",
    "source_row_id",
    "method",
    "model",
    "is_synthetic",
    "is_hard_negative",
    "label_origin",
]


def test_report_frame_has_the_synthetic_sample_row_shape() -> None:
    report = AugmentationReport(
        samples=[],
        rejected=[],
        counts_before={},
        counts_after={},
        needed={},
        n_sources=0,
        n_candidates=0,
    )
    assert list(report.to_frame().columns) == SYNTHETIC_ROW_COLUMNS
    assert report.acceptance_rate == 0.0
