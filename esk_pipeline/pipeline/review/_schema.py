"""The review store's two tables, the status groups queries filter on, upgrades and invariants.

`review_items` holds one row per queued text: the model's guess, why it was queued, the queue
state, the current lease and (once decided) the human decision. `reviews` holds one row per
reviewer action on an item: a decision (domain set) or a skip (domain NULL). An open item under
a valid lease is IN_REVIEW only on read; the table stores PENDING, FAILED or SKIPPED for it.

`add_missing_columns` brings a store made by an earlier release up to date on open;
`integrity_problems` lists rows that break the store's invariants (empty when sound).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from esk_pipeline.pipeline.review.models import ReviewPriority, ReviewReason, ReviewStatus

OPEN_STATUSES = (ReviewStatus.PENDING.value, ReviewStatus.FAILED.value, ReviewStatus.SKIPPED.value)
DECIDED_STATUSES = (ReviewStatus.APPROVED.value, ReviewStatus.CORRECTED.value)
PRIORITY_RANK = {p: rank for rank, p in enumerate(ReviewPriority)}  # LOW=0 .. CRITICAL=3
RANK_PRIORITY = {rank: p for p, rank in PRIORITY_RANK.items()}
DECIDE, SKIP = "decide", "skip"  # `reviews.action`
ID_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit


class _UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC (portable across SQLite and PostgreSQL), returns aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()
# Literal SQL, not a bound IN list: a query can use a partial index only when its WHERE
# repeats the index's condition verbatim.
IS_OPEN_SQL = sa.text(f"status IN ({', '.join(repr(s) for s in OPEN_STATUSES)})")

item_table = sa.Table(
    "review_items",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("predicted_domain", sa.String(128)),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("top_candidates", sa.Text, nullable=False),  # JSON [[domain, score], ...]
    sa.Column("label_source", sa.String(256)),
    sa.Column("error", sa.Text),
    sa.Column("labeler_failed", sa.Boolean, nullable=False),
    # Open items hold PENDING/FAILED/SKIPPED; a valid lease makes them IN_REVIEW on read.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),  # PRIORITY_RANK, so it sorts
    sa.Column("needs_adjudication", sa.Boolean, nullable=False),
    # Why it was queued (ReviewReason: audit, needs_review): set by whoever queues it, never by
    # a decision, so an audit item stays blind through its second opinion, doubt and undo.
    sa.Column("reason", sa.String(32), nullable=False, server_default=ReviewReason.NEEDS_REVIEW),
    # What a decision left it waiting for (ReviewReason: a second opinion, a doubt's re-check).
    # Kept once answered, so that undoing the answer restores it: it holds only while the item
    # is open and not in adjudication (`_rows.to_item`).
    sa.Column("waiting_for", sa.String(32)),
    # Expected gain of reviewing it (higher first within a priority), set by whoever queues it.
    sa.Column("gain", sa.Float, nullable=False, server_default="0"),
    sa.Column("required_reviews", sa.Integer, nullable=False),
    sa.Column("reviews", sa.Integer, nullable=False),
    sa.Column("corrected_domain", sa.String(128)),
    # Why a decision was doubted (ReviewReason); set once per decision, kept after the answer.
    sa.Column("doubt", sa.String(32)),
    sa.Column("reviewer_id", sa.String(128)),
    sa.Column("review_timestamp", _UTCDateTime()),
    sa.Column("created_at", _UTCDateTime(), nullable=False),
    sa.Column("lease_holder", sa.String(128)),
    sa.Column("lease_token", sa.String(32)),
    sa.Column("lease_started_at", _UTCDateTime()),
    sa.Column("lease_expires_at", _UTCDateTime()),
    # Open items in claim order: get_next walks this partial index and stops at LIMIT, however
    # many items are open or decided. (No index on status alone: SQLite would prefer it and
    # sort every open item instead.)
    sa.Index(
        "ix_review_items_open_queue",
        sa.desc("priority"),
        sa.desc("gain"),
        "created_at",
        "id",
        sqlite_where=IS_OPEN_SQL,
        postgresql_where=IS_OPEN_SQL,
    ),
    sa.Index("ix_review_items_lease", "lease_holder"),
    sa.Index("ix_review_items_token", "lease_token"),
)

# One row per reviewer action on an item: a decision (domain set) or a skip (domain NULL).
# `seq` only grows (AUTOINCREMENT on SQLite), so it is a cursor for "new reviews since".
review_table = sa.Table(
    "reviews",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.String(64), sa.ForeignKey("review_items.id"), nullable=False),
    sa.Column("reviewer_id", sa.String(128), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("domain", sa.String(128)),
    sa.Column("decided_at", _UTCDateTime(), nullable=False),
    sa.Column("seconds_spent", sa.Float),
    sa.UniqueConstraint("item_id", "reviewer_id", name="uq_reviews_item_reviewer"),
    sa.Index("ix_reviews_reviewer", "reviewer_id", "seq"),
    sa.Index("ix_reviews_decided_at", "decided_at"),
    sqlite_autoincrement=True,
)

QUEUE_ORDER = (
    item_table.c.priority.desc(),
    item_table.c.gain.desc(),
    item_table.c.created_at,
    item_table.c.id,
)
CLEARED_LEASE = {
    "lease_holder": None,
    "lease_token": None,
    "lease_started_at": None,
    "lease_expires_at": None,
}
# Columns added after the first release: created on open in stores that predate them.
_ADDED_COLUMNS = {
    "reason": f"VARCHAR(32) NOT NULL DEFAULT '{ReviewReason.NEEDS_REVIEW}'",
    "gain": "FLOAT NOT NULL DEFAULT 0",
    "doubt": "VARCHAR(32)",
    "waiting_for": "VARCHAR(32)",
}
# The PostgreSQL advisory lock openers take while they create or upgrade the tables.
_UPGRADE_LOCK = 0x65736B5F726576  # "esk_rev"
# Filling a column just added from what older stores kept elsewhere: they overwrote `reason`
# with what a decision waits for (the reason it was queued for is lost there).
_BACKFILLS = {
    "waiting_for": (
        f"UPDATE {item_table.name} SET waiting_for = reason, "
        f"reason = '{ReviewReason.NEEDS_REVIEW}' WHERE reason IN "
        f"('{ReviewReason.SECOND_OPINION}', '{ReviewReason.POSSIBLE_LABEL_ERROR}')"
    ),
}


def create_or_upgrade(conn: Connection) -> None:
    """Create the tables a new store lacks and add columns an older store lacks."""
    if conn.dialect.name == "postgresql":
        # One opener at a time, as BEGIN IMMEDIATE does on SQLite: otherwise two could both
        # see a column missing, and the later ALTER fails once the first commits.
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})"))
    metadata.create_all(conn)
    add_missing_columns(conn)


def add_missing_columns(conn: Connection) -> None:
    """Bring a store made by an earlier release up to the current item table."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(item_table.name)}
    for name, ddl in _ADDED_COLUMNS.items():
        if name not in present:
            conn.execute(sa.text(f"ALTER TABLE {item_table.name} ADD COLUMN {name} {ddl}"))
            if name in _BACKFILLS:
                conn.execute(sa.text(_BACKFILLS[name]))


def integrity_problems(conn: Connection) -> list[str]:
    """Invariant checks (and SQLite's integrity_check): empty when the store is sound."""
    items, reviews = item_table.c, review_table.c
    problems: list[str] = []
    decisions = (
        sa.select(reviews.item_id, sa.func.count().label("n"))
        .where(reviews.action == DECIDE)
        .group_by(reviews.item_id)
        .subquery()
    )
    n_decisions = sa.func.coalesce(decisions.c.n, 0)
    checks = {
        "decided item without its decision fields": sa.and_(
            items.status.in_(DECIDED_STATUSES),
            sa.or_(
                items.corrected_domain.is_(None),
                items.reviewer_id.is_(None),
                items.review_timestamp.is_(None),
                items.lease_holder.is_not(None),
            ),
        ),
        "open item carrying a decision it was not doubted for": sa.and_(
            items.status.in_(OPEN_STATUSES),
            items.corrected_domain.is_not(None),
            items.doubt.is_(None),
        ),
        "unknown status": items.status.not_in(OPEN_STATUSES + DECIDED_STATUSES),
        "review count differs from its review rows": items.reviews != n_decisions,
        "decided item without any review row": sa.and_(
            items.status.in_(DECIDED_STATUSES), n_decisions == 0
        ),
    }
    if conn.dialect.name == "sqlite":
        result = conn.exec_driver_sql("PRAGMA integrity_check").scalar_one()
        if result != "ok":
            problems.append(f"sqlite integrity_check: {result}")
    for problem, condition in checks.items():
        bad = conn.execute(
            sa.select(items.id)
            .select_from(item_table.outerjoin(decisions, decisions.c.item_id == items.id))
            .where(condition)
            .limit(5)
        ).scalars()
        problems.extend(f"{problem}: {item_id}" for item_id in bad)
    orphans = conn.execute(
        sa.select(sa.func.count())
        .select_from(review_table)
        .where(~sa.exists().where(items.id == reviews.item_id))
    ).scalar_one()
    if orphans:
        problems.append(f"{orphans} review row(s) without their item")
    return problems
