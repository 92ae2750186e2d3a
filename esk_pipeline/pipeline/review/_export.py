"""The review's output: verified labels, every reviewer's votes, and the export file.

`verified_labels` is what the rest of the pipeline trains on (decided items, and doubted
decisions that stand until a second reviewer answers, in the VERIFIED_LABEL_COLUMNS shape);
`decision_votes` feeds reviewer-reliability estimates; `write_export` writes a frame as JSONL,
spreadsheet-safe CSV (`spreadsheet`) or Parquet through `fsutil.atomic_write_with`, so readers
never see half a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast, get_args

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from esk_pipeline.pipeline.fsutil import atomic_write_with
from esk_pipeline.pipeline.labels import LabelOrigin
from esk_pipeline.pipeline.review._schema import DECIDE, DECIDED_STATUSES, item_table, review_table
from esk_pipeline.pipeline.review.errors import InvalidReviewError
from esk_pipeline.pipeline.review.models import (
    VERIFIED_LABEL_COLUMNS,
    VOTE_COLUMNS,
    ExportFormat,
    ReviewStatus,
)
from esk_pipeline.pipeline.spreadsheet import write_spreadsheet_csv


def verified_labels(conn: Connection) -> pd.DataFrame:
    """Approved + corrected items as verified-label rows (see `ReviewDataset.verified_labels`)."""
    items, reviews = item_table.c, review_table.c
    decided = items.status.in_(DECIDED_STATUSES)
    standing = sa.or_(
        decided, sa.and_(items.doubt.is_not(None), items.corrected_domain.is_not(None))
    )
    votes = (
        sa.select(
            reviews.item_id,
            sa.func.count().label("votes"),
            sa.func.count(sa.distinct(reviews.domain)).label("domains"),
        )
        .where(reviews.action == DECIDE)
        .group_by(reviews.item_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            items.id.label("row_id"),
            items.text,
            items.corrected_domain.label("domain"),
            items.predicted_domain,
            items.confidence,
            items.reviewer_id,
            items.review_timestamp.label("reviewed_at"),
            sa.case(
                (decided, items.status),
                (items.corrected_domain == items.predicted_domain, ReviewStatus.APPROVED.value),
                else_=ReviewStatus.CORRECTED.value,
            ).label("review_status"),
            votes.c.votes,
            votes.c.domains,
            items.reason.label("review_reason"),
            items.label_source.label("predicted_source"),
            (~decided).label("doubt_pending"),
        )
        .join(votes, votes.c.item_id == items.id)
        .where(standing)
        .order_by(items.review_timestamp, items.id)
    ).all()
    columns = [*VERIFIED_LABEL_COLUMNS[:8], "votes", "domains", "review_reason"]
    frame = pd.DataFrame(rows, columns=[*columns, "predicted_source", "doubt_pending"])
    frame["doubt_pending"] = frame["doubt_pending"].astype(bool)
    frame["confidence"] = frame["confidence"].astype(float)
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True)
    frame["label_source"] = "reviewer:" + frame["reviewer_id"].astype(str)
    frame["label_origin"] = [
        (LabelOrigin.ADJUDICATED if n > 1 else LabelOrigin.HUMAN_VERIFIED).value
        for n in frame["domains"]
    ]
    frame["votes"] = frame["votes"].astype(int)
    return frame[VERIFIED_LABEL_COLUMNS]


def decision_votes(conn: Connection) -> pd.DataFrame:
    """Every decision (not skips) on every item: VOTE_COLUMNS, oldest first."""
    reviews = review_table.c
    rows = conn.execute(
        sa.select(reviews.item_id, reviews.reviewer_id, reviews.domain)
        .where(reviews.action == DECIDE)
        .order_by(reviews.seq)
    ).all()
    return pd.DataFrame(rows, columns=VOTE_COLUMNS)


def export_target(
    path: str | Path | None, fmt: ExportFormat | None, data_dir: Path
) -> tuple[Path, ExportFormat]:
    """Where to write and in which format: `fmt`, else the path's suffix, else jsonl;
    `data_dir/reviewed/reviewed.<fmt>` when no path is given."""
    formats = get_args(ExportFormat)
    if fmt is None:
        suffix = Path(path).suffix.lstrip(".").lower() if path is not None else ""
        fmt = cast(ExportFormat, suffix) if suffix in formats else "jsonl"
    if fmt not in formats:
        raise InvalidReviewError(f"unknown export format {fmt!r}; use jsonl, csv or parquet")
    target = Path(path) if path is not None else Path(data_dir) / "reviewed" / f"reviewed.{fmt}"
    return target, fmt


def write_export(frame: pd.DataFrame, target: Path, fmt: ExportFormat) -> None:
    """Write `frame` to `target` whole or not at all."""

    def write(temp: Path) -> None:
        if fmt == "parquet":
            frame.to_parquet(temp, index=False)
        elif fmt == "csv":
            write_spreadsheet_csv(frame, temp)
        else:
            frame.to_json(temp, orient="records", lines=True, force_ascii=False, date_format="iso")

    atomic_write_with(target, write)
