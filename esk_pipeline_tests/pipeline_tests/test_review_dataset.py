"""ReviewDataset: queue, leases, concurrency, overlap, metrics, export, crash safety.

Tests marked with the `store` fixture run on SQLite and, when PostgreSQL binaries and psycopg
are present, again on a throwaway PostgreSQL cluster started for this module.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from esk_pipeline.pipeline.review import (
    VERIFIED_LABEL_COLUMNS,
    AlreadyReviewedError,
    InvalidReviewError,
    NotLeasedError,
    QueueFullError,
    ReviewDataset,
    ReviewDatasetConfig,
    ReviewPriority,
    ReviewReason,
    ReviewStatus,
    UndoError,
    UnknownDomainError,
    UnknownItemError,
)
from pydantic import BaseModel, SecretStr

from esk_pipeline.pipeline.ids import row_id
from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy

TAXONOMY = Taxonomy(
    domains=[
        Domain(id="housing", name="ЖКХ"),
        Domain(id="payments", name="Оплата"),
        Domain(id="transport", name="Транспорт"),
        Domain(id="other", name="Другое"),
    ]
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def label(
    rid: str, domain: str | None = "housing", confidence: float = 0.4, **extra: object
) -> dict:
    return {
        "row_id": rid,
        "text": f"текст {rid}",
        "domain": domain,
        "confidence": confidence,
        **extra,
    }


StoreFactory = Callable[..., ReviewDataset]


def _config(data_dir: Path, database_url: str | None, **overrides: object) -> ReviewDatasetConfig:
    fields: dict[str, object] = {
        # Second opinions have tests of their own; elsewhere a decision stands alone.
        "second_opinion_confidence": None,
        "max_queue_size": 10_000,
        "lease_seconds": 600,
        "reviews_per_item": 1,
    }
    return ReviewDatasetConfig(
        data_dir=data_dir,
        database_url=SecretStr(database_url) if database_url else None,
        **(fields | overrides),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[StoreFactory]:
    """SQLite stores under tmp_path; keyword arguments override the config."""
    opened: list[ReviewDataset] = []

    def factory(**overrides: object) -> ReviewDataset:
        store = ReviewDataset(_config(tmp_path, None, **overrides), TAXONOMY, clock=clock)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


# -- PostgreSQL: a throwaway cluster, when the binaries are here ----------------------------


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temp folder on a free loopback port; yield its URL."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'psycopg[binary]'")
    run_as: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="esk-review-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(workdir, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = workdir / "data", _free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "esk", "--auth=trust", "-E", "UTF8"]
    subprocess.run(
        [*run_as, *initdb, "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(workdir / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://esk@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _fresh_postgres_database(server: str) -> str:
    name = f"review_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[StoreFactory]:
    """Like `make`, once on SQLite and once on PostgreSQL."""
    url = None
    if request.param == "postgresql":
        url = _fresh_postgres_database(request.getfixturevalue("postgres_server"))
    opened: list[ReviewDataset] = []

    def factory(**overrides: object) -> ReviewDataset:
        dataset = ReviewDataset(_config(tmp_path, url, **overrides), TAXONOMY, clock=clock)
        opened.append(dataset)
        return dataset

    yield factory
    for dataset in opened:
        dataset.close()


# -- adding --------------------------------------------------------------------------------


def test_same_row_id_makes_one_item_and_refreshes_model_fields(make: StoreFactory) -> None:
    ds = make()
    first = ds.add_items([label("a", confidence=0.4), label("a", confidence=0.4)])
    assert (first.added, first.unchanged) == (1, 1)
    again = ds.add_items([label("a", confidence=0.4)])
    assert (again.added, again.unchanged) == (0, 1)
    refreshed = ds.add_items([label("a", domain=None, confidence=0.1, status="failed")])
    assert refreshed.refreshed == 1
    item = ds.get_item("a")
    assert (item.predicted_domain, item.priority) == (None, ReviewPriority.HIGH)
    assert item.status is ReviewStatus.FAILED
    assert ds.stats().queue_length == 1


def test_re_adding_after_review_keeps_the_human_decision(make: StoreFactory) -> None:
    ds = make()
    ds.add_items([label("a", domain="housing")])
    ds.get_next(1, "alice")
    ds.submit_review("a", "payments", "alice")
    report = ds.add_items([label("a", domain="transport", confidence=0.9)])
    assert (report.kept_decided, report.added, report.refreshed) == (1, 0, 0)
    item = ds.get_item("a")
    assert item.status is ReviewStatus.CORRECTED
    assert (item.corrected_domain, item.predicted_domain) == ("payments", "housing")


def test_accepts_label_frames_and_models(make: StoreFactory) -> None:
    class Result(BaseModel):
        text: str
        domain: str | None
        confidence: float
        top_candidates: list[list[object]]
        status: str = "labeled"

    frame = pd.DataFrame(
        [
            label("f1", top_candidates='[["housing", 0.4], ["payments", 0.3]]', status="labeled"),
            label("f2", domain=None, confidence=float("nan"), status="failed", error="timeout"),
            label("f3", status="deferred"),
            {"row_id": "f4", "text": "  ", "domain": "housing", "confidence": 0.2},
        ]
    )
    ds = make()
    report = ds.add_items(frame)
    assert (report.received, report.added, report.invalid) == (4, 2, 2)
    assert any("deferred" in m for m in report.messages)
    ds.add_items([Result(text="без id", domain="transport", confidence=0.2, top_candidates=[])])
    by_model = ds.get_item(row_id("без id"))
    assert by_model.predicted_domain == "transport"
    failed = ds.get_item("f2")
    assert failed.status is ReviewStatus.FAILED
    assert (failed.predicted_domain, failed.error, failed.confidence) == (None, "timeout", 0.0)
    assert ds.get_item("f1").top_candidates == [["housing", 0.4], ["payments", 0.3]]


@pytest.mark.parametrize(
    ("row", "priority"),
    [
        (label("x", domain=None, status="failed"), ReviewPriority.HIGH),
        (label("x", confidence=0.1), ReviewPriority.MEDIUM),
        (label("x", confidence=0.9, review_reason="audit"), ReviewPriority.MEDIUM),
        (label("x", review_reason="possible_label_error"), ReviewPriority.CRITICAL),
        (label("x", review_reason="second_opinion"), ReviewPriority.CRITICAL),
    ],
)
def test_priority_from_reason_and_failure(
    make: StoreFactory, row: dict, priority: ReviewPriority
) -> None:
    ds = make()
    ds.add_items([row])
    assert ds.get_item("x").priority is priority


def test_max_queue_size_keeps_the_most_urgent_and_says_how_many_were_left(
    make: StoreFactory,
) -> None:
    ds = make(max_queue_size=3)
    ds.add_items([label("old", review_gain=0.5)])
    report = ds.add_items(
        [
            label("low", review_gain=0.1),
            label("high", review_gain=0.9),
            label("mid", review_gain=0.4),
            label("failed", domain=None, status="failed"),
        ]
    )
    assert (report.added, report.rejected_queue_full, report.queue_size) == (2, 2, 3)
    assert any("2 of 4 new item(s) were not added" in m for m in report.messages)
    assert "max_queue_size=3" in report.messages[-1]
    stats = ds.stats()
    assert stats.by_priority == {"low": 0, "medium": 2, "high": 1, "critical": 0}
    assert {i.id for i in ds.get_next(3, "alice")} == {"old", "high", "failed"}
    with pytest.raises(QueueFullError, match="queue is full"):
        ds.add_items([label("more")], raise_when_full=True)
    with pytest.raises(UnknownItemError):
        ds.get_item("more")


# -- leases ----------------------------------------------------------------------------------


def test_get_next_orders_by_priority_then_gain_then_age(
    make: StoreFactory, clock: FakeClock
) -> None:
    ds = make()
    ds.add_items([label("low-old", review_gain=0.1), label("mid-old", review_gain=0.5)])
    clock.advance(60)
    ds.add_items([label("high-new", review_gain=0.9), label("mid-new", review_gain=0.5)])
    ds.add_items([label("failed", domain=None, status="failed")])
    got = [i.id for i in ds.get_next(5, "alice")]
    assert got == ["failed", "high-new", "mid-old", "mid-new", "low-old"]


def test_leases_are_exclusive_and_expire(store: StoreFactory, clock: FakeClock) -> None:
    ds = store(lease_seconds=60)
    ds.add_items([label("a"), label("b")])
    alice = ds.get_next(1, "alice")
    bob = ds.get_next(2, "bob")
    assert [i.id for i in alice] == ["a"] and [i.id for i in bob] == ["b"]
    assert alice[0].status is ReviewStatus.IN_REVIEW and alice[0].lease_holder == "alice"
    assert ds.get_next(1, "carol") == []
    clock.advance(61)
    assert ds.get_item("a").status is ReviewStatus.PENDING
    assert {i.id for i in ds.get_next(5, "carol")} == {"a", "b"}
    with pytest.raises(NotLeasedError, match="another reviewer holds it"):
        ds.submit_review("a", "housing", "alice")


def test_get_next_again_returns_own_leases_first(store: StoreFactory, clock: FakeClock) -> None:
    ds = store(lease_seconds=60)
    ds.add_items([label(f"i{n}") for n in range(5)])
    first = ds.get_next(2, "alice")
    clock.advance(30)
    again = ds.get_next(2, "alice")
    assert [i.id for i in again] == [i.id for i in first]
    assert again[0].lease_expires_at == clock.now + timedelta(seconds=60)  # renewed
    more = ds.get_next(3, "alice")
    assert [i.id for i in more][:2] == [i.id for i in first] and len(more) == 3
    assert ds.stats().by_status["in_review"] == 3


def test_late_submit_is_accepted_while_nobody_else_claimed(
    make: StoreFactory, clock: FakeClock
) -> None:
    ds = make(lease_seconds=60)
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    clock.advance(600)
    assert ds.submit_review("a", "housing", "alice").status is ReviewStatus.APPROVED


def test_threads_never_share_an_item_nor_lose_a_submission(store: StoreFactory) -> None:
    ds = store()
    n_items, n_threads = 300, 50
    ds.add_items([label(f"i{n:03d}", confidence=(n % 10) / 10) for n in range(n_items)])
    handed: dict[str, list[str]] = {}
    submitted: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def reviewer(name: str) -> None:
        got, done = handed.setdefault(name, []), submitted.setdefault(name, [])
        try:
            barrier.wait()
            while batch := ds.get_next(2, name):
                got.extend(i.id for i in batch)
                for item in batch:
                    result = ds.submit_review(item.id, "housing", name)
                    assert result.reviewer_id == name
                    done.append(result.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    all_handed = [i for ids in handed.values() for i in ids]
    assert len(all_handed) == len(set(all_handed)) == n_items  # no item to two reviewers
    assert sorted(i for ids in submitted.values() for i in ids) == sorted(all_handed)
    stats = ds.stats()
    assert stats.by_status["approved"] == n_items and stats.queue_length == 0
    assert ds.last_review_seq() > 0 and ds.reviews_since(0) == n_items
    assert ds.integrity_problems() == []


_CLAIMER = """
import json, sys
from pathlib import Path
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy, Domain
tax = Taxonomy(domains=[Domain(id="housing", name="h"), Domain(id="payments", name="p")])
ds = ReviewDataset(ReviewDatasetConfig(data_dir=Path(sys.argv[1])), tax)
got = []
while batch := ds.get_next(3, sys.argv[2]):
    for item in batch:
        got.append(item.id)
        ds.submit_review(item.id, "housing", sys.argv[2])
print(json.dumps(got))
"""


def test_processes_never_share_an_item(make: StoreFactory, tmp_path: Path) -> None:
    ds = make()
    ds.add_items([label(f"p{n:03d}") for n in range(90)])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(tmp_path), f"proc{n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    handed = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    flat = [i for ids in handed for i in ids]
    assert len(flat) == len(set(flat)) == 90
    assert ds.stats().by_status["approved"] == 90


# -- decisions -------------------------------------------------------------------------------


def test_submit_is_idempotent_and_refuses_a_changed_mind(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", domain="housing")])
    ds.get_next(1, "alice")
    first = ds.submit_review("a", "payments", "alice")
    assert (first.status, first.corrected_domain, first.reviews) == (
        ReviewStatus.CORRECTED,
        "payments",
        1,
    )
    again = ds.submit_review("a", "payments", "alice")
    assert again == first
    assert ds.reviews_since(0) == 1 and ds.stats().done_today == 1
    with pytest.raises(AlreadyReviewedError, match="undo that first"):
        ds.submit_review("a", "housing", "alice")


def test_approve_flag(make: StoreFactory) -> None:
    ds = make()
    ds.add_items([label("a", domain="housing"), label("f", domain=None, status="failed")])
    ds.get_next(2, "alice")
    with pytest.raises(InvalidReviewError, match="no prediction to approve"):
        ds.submit_review("f", None, "alice", approve=True)
    with pytest.raises(InvalidReviewError, match="model's own prediction"):
        ds.submit_review("a", "housing", "alice", approve=False)
    assert ds.submit_review("a", None, "alice", approve=True).status is ReviewStatus.APPROVED
    assert ds.submit_review("f", "other", "alice").status is ReviewStatus.CORRECTED


def test_refusals(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a"), label("b")])
    with pytest.raises(NotLeasedError, match="get it with get_next"):
        ds.submit_review("a", "housing", "alice")
    ds.get_next(1, "bob")
    with pytest.raises(NotLeasedError, match="another reviewer holds it"):
        ds.submit_review("a", "housing", "alice")
    with pytest.raises(UnknownDomainError, match="unknown domain 'heating'"):
        ds.submit_review("a", "heating", "bob")
    with pytest.raises(UnknownItemError, match="no review item 'zzz'"):
        ds.submit_review("zzz", "housing", "bob")
    with pytest.raises(InvalidReviewError):
        ds.get_next(1, " ")
    ds.submit_review("a", "housing", "bob")
    ds.get_next(1, "alice")
    with pytest.raises(NotLeasedError, match="already decided"):
        ds.submit_review("a", "payments", "alice")
    assert ds.get_item("a").reviews == 1  # no refused submission left a trace


def test_skip_goes_back_to_the_queue_for_others_only(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", confidence=0.1), label("b", confidence=0.9)])
    ds.get_next(1, "alice")
    skipped = ds.skip("a", "alice")
    assert skipped.status is ReviewStatus.SKIPPED and skipped.lease_holder is None
    assert ds.skip("a", "alice") == skipped  # idempotent
    assert [i.id for i in ds.get_next(5, "alice")] == ["b"]
    assert [i.id for i in ds.get_next(5, "bob")] == ["a"]
    assert ds.submit_review("a", "housing", "bob").status is ReviewStatus.APPROVED
    assert ds.reviews_since(0) == 1  # a skip is not a decision


def test_release_gives_the_item_to_anyone(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    with pytest.raises(NotLeasedError):
        ds.release("a", "bob")
    assert ds.release("a", "alice").status is ReviewStatus.PENDING
    assert [i.id for i in ds.get_next(1, "alice")] == ["a"]  # even back to the same reviewer


def test_undo_last(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a", domain="housing"), label("b", domain="housing")])
    with pytest.raises(UndoError, match="nothing to undo"):
        ds.undo_last("alice")
    ds.get_next(2, "alice")
    ds.submit_review("a", "payments", "alice")
    ds.skip("b", "alice")
    undone_skip = ds.undo_last("alice")
    assert (undone_skip.id, undone_skip.status) == ("b", ReviewStatus.IN_REVIEW)
    undone = ds.undo_last("alice")
    assert (undone.id, undone.status, undone.lease_holder) == ("a", ReviewStatus.IN_REVIEW, "alice")
    assert (undone.corrected_domain, undone.reviews) == (None, 0)
    assert ds.stats().done_today == 0 and ds.integrity_problems() == []
    assert ds.submit_review("a", "housing", "alice").status is ReviewStatus.APPROVED
    assert ds.get_item("a").reviews == 1 and ds.integrity_problems() == []


def test_undo_refused_once_the_item_moved_on(make: StoreFactory) -> None:
    ds = make(reviews_per_item=2)
    ds.add_items([label("a")])
    ds.get_next(1, "alice")
    ds.submit_review("a", "housing", "alice")
    ds.get_next(1, "bob")
    with pytest.raises(UndoError, match="another reviewer"):
        ds.undo_last("alice")  # bob holds the lease
    ds.submit_review("a", "housing", "bob")
    with pytest.raises(UndoError, match="another reviewer"):
        ds.undo_last("alice")  # bob reviewed it after alice
    assert ds.get_item("a").status is ReviewStatus.APPROVED


# -- overlap and agreement -----------------------------------------------------------------


def test_overlap_needs_independent_reviews_and_adjudicates_disagreement(
    store: StoreFactory,
) -> None:
    ds = store(reviews_per_item=2)
    ds.add_items([label("agree", confidence=0.45), label("split", confidence=0.45)])
    ds.get_next(2, "alice")
    ds.submit_review("agree", "housing", "alice")
    half = ds.submit_review("split", "housing", "alice")
    assert (half.status, half.reviews, half.corrected_domain) == (ReviewStatus.PENDING, 1, None)
    assert ds.get_next(2, "alice") == []  # never the same reviewer twice
    ds.get_next(2, "bob")
    assert ds.submit_review("agree", "housing", "bob").status is ReviewStatus.APPROVED
    split = ds.submit_review("split", "payments", "bob")
    assert split.status is ReviewStatus.PENDING and split.needs_adjudication
    assert split.priority is ReviewPriority.CRITICAL
    assert ds.get_next(1, "alice") == [] and ds.get_next(1, "bob") == []
    assert [i.id for i in ds.get_next(1, "carol")] == ["split"]
    decided = ds.submit_review("split", "transport", "carol")  # the adjudicator decides
    assert (decided.status, decided.corrected_domain, decided.reviewer_id, decided.reviews) == (
        ReviewStatus.CORRECTED,
        "transport",
        "carol",
        3,
    )
    assert ds.reviews_since(0) == 5 and ds.agreement().needs_adjudication == 0


def test_overlap_of_three_decides_by_strict_majority(make: StoreFactory) -> None:
    ds = make(reviews_per_item=3)
    ds.add_items([label("m", domain="housing"), label("s", domain="housing")])
    for reviewer, m_vote, s_vote in [
        ("r1", "payments", "housing"),
        ("r2", "payments", "payments"),
        ("r3", "housing", "transport"),
    ]:
        ds.get_next(2, reviewer)
        ds.submit_review("m", m_vote, reviewer)
        ds.submit_review("s", s_vote, reviewer)
    m, s = ds.get_item("m"), ds.get_item("s")
    assert (m.status, m.corrected_domain) == (ReviewStatus.CORRECTED, "payments")
    assert s.needs_adjudication and s.status is ReviewStatus.PENDING


def test_kappa_and_per_reviewer_agreement_on_a_hand_computed_example(
    make: StoreFactory, clock: FakeClock
) -> None:
    """Two reviewers, six items, all predicted "housing" (h); p = "payments".

    item:   1  2  3  4  5  6
    alice:  h  h  h  h  p  h      alice: h=5, p=1
    bob:    h  h  h  p  p  p      bob:   h=3, p=3
    Observed agreement p_o = 4/6 (items 1, 2, 3, 5).
    Cohen:  p_e = (5*3 + 1*3) / 36 = 1/2  ->  kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    Fleiss: pooled p_h = 8/12, p_p = 4/12 -> P_e = 4/9 + 1/9 = 5/9; every item's P_i is 1
            (agree) or 0 (disagree), so P-bar = 4/6 -> kappa = (2/3 - 5/9) / (4/9) = 1/4.
    Agreement with the model: alice 5/6, bob 3/6.
    Seconds: both lease all six at once; alice submits every 10 s (10..60, median 35),
    bob every 5 s (5..30, median 17.5).
    """
    ds = make(reviews_per_item=2)
    ids = [f"i{n}" for n in range(1, 7)]
    ds.add_items([label(i, domain="housing") for i in ids])
    votes = {"alice": "hhhhph", "bob": "hhhppp"}
    for reviewer, step in (("alice", 10), ("bob", 5)):
        assert [i.id for i in ds.get_next(6, reviewer)] == ids
        for item_id, vote in zip(ids, votes[reviewer], strict=True):
            clock.advance(step)
            ds.submit_review(item_id, {"h": "housing", "p": "payments"}[vote], reviewer)
    report = ds.agreement()
    assert report.items_with_overlap == 6
    assert report.observed_agreement == pytest.approx(4 / 6)
    assert report.fleiss_kappa == pytest.approx(1 / 4)
    assert report.mean_cohen_kappa == pytest.approx(1 / 3)
    [pair] = report.pairs
    assert (pair.reviewer_a, pair.reviewer_b, pair.items) == ("alice", "bob", 6)
    assert pair.cohen_kappa == pytest.approx(1 / 3)
    assert report.needs_adjudication == 2  # items 4 and 6
    alice, bob = report.reviewers
    assert alice.agreement_with_model == pytest.approx(5 / 6)
    assert bob.agreement_with_model == pytest.approx(3 / 6)
    assert (alice.median_seconds, bob.median_seconds) == (35.0, 17.5)
    # Agreed items 1, 2, 3, 5 are decided; each reviewer matches all four decisions.
    assert alice.agreement_with_majority == bob.agreement_with_majority == 1.0
    # carol adjudicates item 4 as payments: alice now matches 4 of 5 decisions, bob 5 of 5.
    assert [i.id for i in ds.get_next(1, "carol")] == ["i4"]
    ds.submit_review("i4", "payments", "carol")
    after = {r.reviewer_id: r for r in ds.agreement().reviewers}
    assert after["alice"].agreement_with_majority == pytest.approx(4 / 5)
    assert after["bob"].agreement_with_majority == 1.0


def test_quality_metrics_on_a_hand_built_example(make: StoreFactory, clock: FakeClock) -> None:
    """predicted -> human: i1 h->h, i2 h->p, i3 p->p | i4 p->p, i5 t->h, i6 failed->t.

    decided 6, approved 3 (i1, i3, i4), corrected 3 -> share 0.5; accuracy over the five the
    model labelled = 3/5. housing: predicted 2, actual 2 (i1, i5), correct 1; payments:
    predicted 2, actual 3, correct 2; transport: predicted 1, actual 0, correct 0.
    alice decides i1..i3 at +30, +60, +90 s of one lease: 180 s for 3 -> 60 per hour.
    """
    ds = make()
    predicted = {"i1": "housing", "i2": "housing", "i3": "payments", "i4": "payments"}
    predicted |= {"i5": "transport", "i6": None}
    human = {"i1": "housing", "i2": "payments", "i3": "payments", "i4": "payments"}
    human |= {"i5": "housing", "i6": "transport"}
    ds.add_items([label(i, domain=d, confidence=0.45) for i, d in predicted.items()])
    ds.get_next(3, "alice")  # i6 first (CRITICAL), then i1, i2
    ds.get_next(3, "bob")
    held = {"alice": ["i6", "i1", "i2"], "bob": ["i3", "i4", "i5"]}
    for reviewer, items in held.items():
        for item_id in items:
            clock.advance(30)
            ds.submit_review(item_id, human[item_id], reviewer)
    q = ds.quality_metrics()
    assert (q.decided, q.approved, q.corrected, q.labeler_failures_decided) == (6, 3, 3, 1)
    assert q.correction_share == 0.5 and q.model_accuracy == pytest.approx(3 / 5)
    by_domain = {d.domain: d for d in q.by_domain}
    assert (by_domain["housing"].precision, by_domain["housing"].recall) == (0.5, 0.5)
    assert by_domain["payments"].precision == 1.0
    assert by_domain["payments"].recall == pytest.approx(2 / 3)
    assert (by_domain["transport"].precision, by_domain["transport"].recall) == (0.0, None)
    assert q.confusion == {
        "__failed__": {"transport": 1},
        "housing": {"housing": 1, "payments": 1},
        "payments": {"payments": 2},
        "transport": {"housing": 1},
    }
    alice, bob = q.throughput
    assert (alice.reviewer_id, alice.decisions, alice.done_today) == ("alice", 3, 3)
    assert alice.decisions_per_hour == pytest.approx(60.0)  # 3 in 30+60+90 s
    # bob leased at T0 too and decided at +120, +150, +180 s: 450 s for 3 -> 24 per hour.
    assert bob.decisions_per_hour == pytest.approx(3 / (450 / 3600))
    assert alice.decisions_per_day == 3.0


def test_stats_and_review_cursor(make: StoreFactory, clock: FakeClock) -> None:
    ds = make()
    ds.add_items([label(f"i{n}") for n in range(4)])
    ds.get_next(2, "alice")
    ds.submit_review("i0", "housing", "alice")
    cursor = ds.last_review_seq()
    clock.advance(24 * 3600)  # next day
    ds.submit_review("i1", "payments", "alice")
    stats = ds.stats("alice")
    assert stats.by_status == {
        "pending": 2,
        "in_review": 0,
        "approved": 1,
        "corrected": 1,
        "skipped": 0,
        "failed": 0,
    }
    assert (stats.queue_length, stats.available, stats.available_for_reviewer) == (2, 2, 2)
    assert (stats.done_today, stats.reviewer_done_today) == (1, 1)
    assert ds.reviews_since(cursor) == 1 and ds.reviews_since(T0 + timedelta(hours=1)) == 1
    assert stats.last_review_seq > cursor


# -- output ----------------------------------------------------------------------------------


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
    assert ds.export_reviewed(tmp_path / "x.txt", fmt="csv").read_text().startswith("row_id,")
    assert not list((tmp_path / "out").glob(".*partial"))


def test_verified_labels_is_empty_but_typed_before_any_review(make: StoreFactory) -> None:
    frame = make().verified_labels()
    assert frame.empty and list(frame.columns) == VERIFIED_LABEL_COLUMNS


# -- crash safety ----------------------------------------------------------------------------

_WORKER = """
import sys
from pathlib import Path
from esk_pipeline.pipeline.review import ReviewDataset, ReviewDatasetConfig
from esk_pipeline.pipeline.taxonomy import Taxonomy, Domain
tax = Taxonomy(domains=[Domain(id="housing", name="h"), Domain(id="payments", name="p")])
ds = ReviewDataset(ReviewDatasetConfig(data_dir=Path(sys.argv[1]), reviews_per_item=2), tax)
n = 0
while True:
    ds.add_items([{"row_id": f"k{n}-{i}", "text": f"t {n} {i}", "domain": "housing",
                   "confidence": 0.3} for i in range(10)])
    for reviewer in ("r1", "r2"):
        batch = ds.get_next(5, reviewer)
        for item in batch[:-1]:
            ds.submit_review(item.id, "payments" if n % 3 else "housing", reviewer)
        if batch:
            ds.skip(batch[-1].id, reviewer)
        if n % 4 == 0:
            ds.undo_last(reviewer)
    n += 1
    print(n, flush=True)
"""


def test_killed_mid_way_leaves_a_consistent_store(tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    for line in worker.stdout:
        if int(line) >= 25:
            break
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    ds = ReviewDataset(ReviewDatasetConfig(data_dir=tmp_path, reviews_per_item=2), TAXONOMY)
    try:
        assert ds.integrity_problems() == []
        stats = ds.stats()
        decided = stats.by_status["approved"] + stats.by_status["corrected"]
        assert decided > 0 and stats.queue_length > 0
        assert sum(stats.by_status.values()) == decided + stats.queue_length
        assert len(ds.verified_labels()) == decided
        with ds._engine.connect() as conn:  # every decided item has its two votes stored
            short = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM review_items i WHERE i.status IN ('approved','corrected')"
                " AND (SELECT COUNT(*) FROM reviews r WHERE r.item_id = i.id"
                " AND r.action = 'decide') < 2"
            ).scalar_one()
        assert short == 0
        ds.get_next(1, "after-crash")  # the store still takes writes
    finally:
        ds.close()


# -- trust: second opinions, doubted decisions, withdrawal, origins ------------------------------


def test_a_correction_of_a_confident_model_waits_for_a_second_reviewer(
    store: StoreFactory,
) -> None:
    ds = store(second_opinion_confidence=0.7)
    ds.add_items([label("sure", confidence=0.9), label("unsure", confidence=0.4)])
    for item in ds.get_next(2, "alice"):
        ds.submit_review(item.id, "payments", "alice")  # both contradict "housing"
    held = ds.get_item("sure")
    assert held.status is ReviewStatus.PENDING and held.reason is ReviewReason.SECOND_OPINION
    assert (held.priority, held.required_reviews, held.reviews) == (ReviewPriority.CRITICAL, 2, 1)
    assert ds.get_item("unsure").status is ReviewStatus.CORRECTED  # an unsure model: no wait
    assert set(ds.verified_labels()["row_id"]) == {"unsure"}  # not training data yet
    assert ds.get_next(1, "alice") == []  # never the same reviewer twice
    [second] = ds.get_next(1, "bob")
    assert second.id == "sure"
    ds.submit_review("sure", "payments", "bob")
    decided = ds.verified_labels().set_index("row_id")
    assert decided.loc["sure", "label_origin"] == "human_verified"
    assert (decided.loc["sure", "domain"], decided.loc["sure", "votes"]) == ("payments", 2)


def test_a_disagreeing_second_opinion_is_adjudicated_and_marked_so(make: StoreFactory) -> None:
    ds = make(second_opinion_confidence=0.0)
    ds.add_items([label("a", confidence=0.9)])
    ds.get_next(1, "alice")
    ds.submit_review("a", "payments", "alice")
    ds.get_next(1, "bob")
    ds.submit_review("a", "housing", "bob")
    assert ds.get_item("a").needs_adjudication
    ds.get_next(1, "carol")
    ds.submit_review("a", "housing", "carol")
    decided = ds.verified_labels().set_index("row_id")
    assert (decided.loc["a", "domain"], decided.loc["a", "label_origin"]) == (
        "housing",
        "adjudicated",
    )


def test_an_approval_needs_no_second_opinion_and_undo_restores_one_review(
    make: StoreFactory,
) -> None:
    ds = make(second_opinion_confidence=0.0)
    ds.add_items([label("a"), label("b")])
    ds.get_next(2, "alice")
    ds.submit_review("a", None, "alice", approve=True)
    assert ds.get_item("a").status is ReviewStatus.APPROVED
    ds.submit_review("b", "payments", "alice")
    assert ds.get_item("b").required_reviews == 2
    ds.undo_last("alice")
    undone = ds.get_item("b")
    assert (undone.required_reviews, undone.reason) == (1, ReviewReason.NEEDS_REVIEW)


def test_a_doubted_decision_goes_back_for_another_reviewer_once(store: StoreFactory) -> None:
    ds = store()
    ds.add_items([label("a"), label("b")])
    for item in ds.get_next(2, "alice"):
        ds.submit_review(item.id, "payments", "alice")
    assert ds.request_second_opinion(["a", "missing"], ReviewReason.POSSIBLE_LABEL_ERROR) == 1
    doubted = ds.get_item("a")
    assert doubted.status is ReviewStatus.PENDING and doubted.priority is ReviewPriority.CRITICAL
    assert set(ds.verified_labels()["row_id"]) == {"b"}
    ds.get_next(1, "bob")
    ds.submit_review("a", "payments", "bob")  # the second reviewer confirms it
    assert ds.get_item("a").status is ReviewStatus.CORRECTED
    # Two decisions now: settled, never reopened again.
    assert ds.request_second_opinion(["a"], ReviewReason.POSSIBLE_LABEL_ERROR) == 0


def test_withdraw_others_removes_only_untouched_items(make: StoreFactory) -> None:
    ds = make()
    gains = {"leased": 0.9, "skipped": 0.8, "decided": 0.7, "keep": 0.2, "gone": 0.1}
    ds.add_items([label(name, review_gain=gain) for name, gain in gains.items()])
    assert [i.id for i in ds.get_next(1, "alice")] == ["leased"]
    skipped, decided = ds.get_next(2, "bob")
    ds.skip(skipped.id, "bob")
    ds.submit_review(decided.id, "payments", "bob")
    report = ds.add_items([label("keep", review_gain=0.2)], withdraw_others=True)
    assert report.withdrawn == 1
    with pytest.raises(UnknownItemError):
        ds.get_item("gone")
    for name in ("keep", "leased", "skipped", "decided"):
        assert ds.get_item(name).id == name


def test_a_store_from_before_the_trust_columns_is_upgraded_on_open(tmp_path: Path) -> None:
    import sqlalchemy as sa

    path = tmp_path / "review.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE review_items (id VARCHAR(64) PRIMARY KEY)"))
    engine.dispose()
    ds = ReviewDataset(_config(tmp_path, None), TAXONOMY)
    with ds._engine.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("review_items")}
    ds.close()
    assert {"reason", "gain"} <= columns
