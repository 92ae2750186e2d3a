"""How good the reviews and the model are: inter-reviewer agreement, model quality, throughput.

Agreement is measured on items with two or more decisions: Fleiss' kappa over all of them
(generalised to a varying number of reviewers per item), Cohen's kappa per reviewer pair
sharing at least two items (scikit-learn's `cohen_kappa_score`). Model quality compares the
model's prediction with the final human decision on decided items. Every function reads
through the caller's connection.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from esk_pipeline.pipeline.review._rows import utc_midnight
from esk_pipeline.pipeline.review._schema import (
    DECIDE,
    DECIDED_STATUSES,
    OPEN_STATUSES,
    item_table,
    review_table,
)
from esk_pipeline.pipeline.review.models import (
    FAILED_PREDICTION,
    AgreementReport,
    DomainQuality,
    PairAgreement,
    QualityReport,
    ReviewerAgreement,
    ReviewerThroughput,
    ReviewStatus,
)

MIN_PAIR_ITEMS = 2  # shared items a reviewer pair needs before its kappa is reported
_DECISION_COLUMNS = [
    "item_id",
    "reviewer_id",
    "domain",
    "decided_at",
    "seconds_spent",
    "predicted_domain",
    "final_domain",
]


def agreement(conn: Connection) -> AgreementReport:
    """Inter-reviewer agreement (see `ReviewDataset.agreement`)."""
    decisions = _decisions_frame(conn)
    by_item: dict[str, dict[str, str]] = defaultdict(dict)
    for item_id, reviewer, domain in decisions[["item_id", "reviewer_id", "domain"]].itertuples(
        index=False
    ):
        by_item[item_id][reviewer] = domain
    overlap = {item: votes for item, votes in by_item.items() if len(votes) >= 2}
    unanimous = sum(len(set(votes.values())) == 1 for votes in overlap.values())

    pairs: list[PairAgreement] = []
    reviewers = sorted(decisions["reviewer_id"].unique())
    for a, b in itertools.combinations(reviewers, 2):
        shared = [(v[a], v[b]) for v in overlap.values() if a in v and b in v]
        if len(shared) >= MIN_PAIR_ITEMS:
            observed, kappa = cohen_kappa(shared)
            pairs.append(
                PairAgreement(
                    reviewer_a=a,
                    reviewer_b=b,
                    items=len(shared),
                    observed_agreement=observed,
                    cohen_kappa=kappa,
                )
            )
    kappas = [p.cohen_kappa for p in pairs if p.cohen_kappa is not None]

    per_reviewer: list[ReviewerAgreement] = []
    for reviewer, group in decisions.groupby("reviewer_id", sort=True):
        on_overlap = group[group["item_id"].isin(overlap) & group["final_domain"].notna()]
        with_model = group[group["predicted_domain"].notna()]
        seconds = group["seconds_spent"].dropna()
        per_reviewer.append(
            ReviewerAgreement(
                reviewer_id=str(reviewer),
                reviews=len(group),
                agreement_with_majority=_share(on_overlap["domain"] == on_overlap["final_domain"]),
                agreement_with_model=_share(with_model["domain"] == with_model["predicted_domain"]),
                median_seconds=float(seconds.median()) if len(seconds) else None,
            )
        )
    adjudication = conn.execute(
        sa.select(sa.func.count()).where(
            item_table.c.needs_adjudication, item_table.c.status.in_(OPEN_STATUSES)
        )
    ).scalar_one()
    return AgreementReport(
        items_with_overlap=len(overlap),
        observed_agreement=unanimous / len(overlap) if overlap else None,
        fleiss_kappa=fleiss_kappa([list(v.values()) for v in overlap.values()]),
        mean_cohen_kappa=statistics.fmean(kappas) if kappas else None,
        pairs=pairs,
        reviewers=per_reviewer,
        needs_adjudication=adjudication,
    )


def quality(conn: Connection, now: datetime) -> QualityReport:
    """Model accuracy against reviewers (see `ReviewDataset.quality_metrics`)."""
    items = item_table.c
    decided = conn.execute(
        sa.select(items.predicted_domain, items.corrected_domain, items.status).where(
            items.status.in_(DECIDED_STATUSES)
        )
    ).all()
    labelled = [(p, h) for p, h, _ in decided if p is not None]
    approved = sum(s == ReviewStatus.APPROVED.value for _, _, s in decided)
    corrected = len(decided) - approved
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for predicted, human, _ in decided:
        confusion[predicted or FAILED_PREDICTION][human] += 1
    by_domain = []
    for domain in sorted({d for pair in labelled for d in pair}):
        predicted_n = sum(p == domain for p, _ in labelled)
        actual_n = sum(h == domain for _, h in labelled)
        correct = sum(p == h == domain for p, h in labelled)
        by_domain.append(
            DomainQuality(
                domain=domain,
                predicted=predicted_n,
                actual=actual_n,
                correct=correct,
                precision=correct / predicted_n if predicted_n else None,
                recall=correct / actual_n if actual_n else None,
            )
        )
    return QualityReport(
        decided=len(decided),
        approved=approved,
        corrected=corrected,
        correction_share=corrected / len(decided) if decided else None,
        model_accuracy=(sum(p == h for p, h in labelled) / len(labelled) if labelled else None),
        labeler_failures_decided=len(decided) - len(labelled),
        by_domain=by_domain,
        confusion={p: dict(h) for p, h in sorted(confusion.items())},
        throughput=_throughput(_decisions_frame(conn), now),
    )


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> tuple[float, float | None]:
    """(observed agreement, Cohen's kappa) for two raters' labels on the same items.

    Kappa is None when chance agreement is 1: both raters gave every item one same label.
    """
    # scikit-learn takes a second to import; only the agreement report needs it.
    from sklearn.metrics import cohen_kappa_score

    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    observed = sum(a == b for a, b in pairs) / len(pairs)
    if len(set(first) | set(second)) < 2:
        return observed, None
    return observed, float(cohen_kappa_score(first, second))


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa, with each item's agreement computed over its own number of raters.

    `ratings` holds each item's labels (one per rater); items with fewer than two are left
    out. With the same number of raters on every item this is the textbook Fleiss' kappa.
    None when there is no item to compare or chance agreement is 1.
    """
    items = [r for r in ratings if len(r) >= 2]
    if not items:
        return None
    totals: Counter[str] = Counter()
    agreement_sum = 0.0
    for labels in items:
        counts = Counter(labels)
        totals.update(counts)
        n = len(labels)
        agreement_sum += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed = agreement_sum / len(items)
    n_ratings = sum(totals.values())
    expected = sum((c / n_ratings) ** 2 for c in totals.values())
    return None if expected >= 1 else (observed - expected) / (1 - expected)


def _decisions_frame(conn: Connection) -> pd.DataFrame:
    """Every decision row joined with its item's prediction and final decision."""
    items, reviews = item_table.c, review_table.c
    rows = conn.execute(
        sa.select(
            reviews.item_id,
            reviews.reviewer_id,
            reviews.domain,
            reviews.decided_at,
            reviews.seconds_spent,
            items.predicted_domain,
            items.corrected_domain.label("final_domain"),
        )
        .join(item_table, items.id == reviews.item_id)
        .where(reviews.action == DECIDE)
        .order_by(reviews.seq)
    ).all()
    frame = pd.DataFrame(rows, columns=_DECISION_COLUMNS)
    frame["seconds_spent"] = frame["seconds_spent"].astype(float)
    return frame


def _share(matches: pd.Series) -> float | None:
    return float(matches.mean()) if len(matches) else None


def _throughput(decisions: pd.DataFrame, now: datetime) -> list[ReviewerThroughput]:
    midnight = utc_midnight(now)
    result = []
    for reviewer, group in decisions.groupby("reviewer_id", sort=True):
        times = [pd.Timestamp(t).to_pydatetime() for t in group["decided_at"]]
        seconds = group["seconds_spent"].dropna()
        working_hours = float(seconds.sum()) / 3600
        days = {t.date() for t in times}
        result.append(
            ReviewerThroughput(
                reviewer_id=str(reviewer),
                decisions=len(group),
                first_at=min(times),
                last_at=max(times),
                decisions_per_hour=len(seconds) / working_hours if working_hours > 0 else None,
                decisions_per_day=len(group) / len(days),
                done_today=sum(t >= midnight for t in times),
            )
        )
    return result
