"""`generate_logs`: the seeded frame of sample messages, base rows plus their later messages.

Deterministic: the same arguments give an identical frame. All randomness comes from one
`numpy.random.Generator` (vectorised draws: domains, kinds, flags, times, users) and one
`random.Random` (per-row text composition), both seeded from `seed`, drawn in a fixed order;
nothing iterates a set. Later messages are what the authors of substantive base rows send
afterwards: exact resubmissions, near copies and contentless follow-ups.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.progress import SILENT, ProgressReporter
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data._banks import domain_banks, domain_weights
from esk_pipeline.sample_data._compose import follow_up, row_text
from esk_pipeline.sample_data._draws import (
    FLAGS,
    MESS_RATES,
    ROW_KINDS,
    draw_kinds,
    draw_timestamps,
    draw_users,
    session_ids,
)
from esk_pipeline.sample_data._noise import near_variant
from esk_pipeline.sample_data._slots import recording
from esk_pipeline.sample_data._templates import Language

_COLUMNS = ("text", "ts", "user_id", "channel", "region", "session_id", "true_domain")
_LATER_KINDS = ("exact_duplicate", "near_duplicate", "follow_up")
_LATER_DELAY_S = {
    "exact_duplicate": (30, 1_800),  # an impatient resubmission: within half an hour
    "near_duplicate": (120, 6 * 3_600),
    "follow_up": (60, 3 * 3_600),
}
_MIN_DUPLICATED_LENGTH = 10
_PROGRESS_STEP = 10_000  # rows composed between two progress reports
# Rows per batch of `generate_log_batches`: about 0.3 GB to make and insert, whatever the total.
SEED_BATCH_ROWS = 250_000


def generate_logs(
    taxonomy: Taxonomy,
    *,
    n_rows: int = 6000,
    start_date: date = date(2026, 11, 1),
    days: int = 7,
    seed: int = 42,
    planted_pii: bool = False,
    progress: ProgressReporter = SILENT,
) -> pd.DataFrame:
    """`n_rows` realistic contact-centre messages over `days` days from `start_date` (UTC).

    Columns: `text`, `ts` (datetime64[ns, UTC], sorted), `user_id`, `channel`, `region`,
    `session_id`, `true_domain`. `true_domain` is ground truth for benchmarks and tests only -
    drop it before inserting into `esk_logs`; real logs have no such column.
    With `planted_pii`, a `planted_pii` column lists the personal data written into each text
    as (kind, value) pairs (kinds in `PII_KINDS`; the value as generated, before any typo or
    transcription damage): ground truth as well. Same arguments, same frame (and the same
    texts with or without the column). `progress` is advanced by the rows as they are composed.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    np_rng = np.random.default_rng(seed)
    text_rng = random.Random(seed)
    banks = domain_banks(taxonomy)
    weights = domain_weights(taxonomy)
    fallback_id = taxonomy.other_id

    later_counts = {kind: round(n_rows * MESS_RATES[kind]) for kind in _LATER_KINDS}
    n_base = n_rows - sum(later_counts.values())

    domain_index = np_rng.choice(len(banks), size=n_base, p=[weights[b.domain_id] for b in banks])
    kinds = draw_kinds(np_rng, n_base).tolist()
    flag_matrix = np.column_stack(
        [np_rng.random(n_base) < MESS_RATES[flag] for flag in FLAGS]
    ).tolist()
    ts = draw_timestamps(np_rng, n_base, start_date, days)
    user_ids, channels, regions = draw_users(np_rng, n_base)
    sessions = session_ids(np_rng, n_base)

    texts: list[str] = []
    true_domains: list[str] = []
    planted: list[list[tuple[str, str]]] = []
    for i, bank_i in enumerate(domain_index.tolist()):
        bank, kind = banks[bank_i], ROW_KINDS[kinds[i]]
        flags = dict(zip(FLAGS, flag_matrix[i], strict=True))
        transcript = channels[i] == "phone_transcript"
        secondary = (
            banks[text_rng.choice(bank.neighbours)]
            if flags["multi_topic"] and bank.neighbours
            else None
        )
        texts.append(
            recording(planted if planted_pii else None, row_text)(
                kind, bank, secondary, flags, transcript, text_rng
            )
        )
        off_topic = kind in ("empty", "very_short", "spam") and fallback_id is not None
        true_domains.append(fallback_id if off_topic else bank.domain_id)
        if (i + 1) % _PROGRESS_STEP == 0:
            progress.advance(_PROGRESS_STEP)
    progress.advance(n_base % _PROGRESS_STEP)

    base = pd.DataFrame(
        {
            "text": pd.Series(texts, dtype=object),
            "ts": ts,
            "user_id": user_ids,
            "channel": channels,
            "region": regions,
            "session_id": sessions,
            "true_domain": pd.Series(true_domains, dtype=object),
        }
    )
    if planted_pii:
        base["planted_pii"] = pd.Series(planted, dtype=object)
    languages = [banks[i].language for i in domain_index.tolist()]
    later = _later_messages(base, languages, later_counts, np_rng, text_rng, start_date, days)
    progress.advance(sum(later_counts.values()))
    frame = pd.concat([base, *later], ignore_index=True)
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
    columns = [*_COLUMNS, "planted_pii"] if planted_pii else list(_COLUMNS)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)[columns]


def generate_log_batches(
    taxonomy: Taxonomy,
    *,
    n_rows: int,
    batch_rows: int = SEED_BATCH_ROWS,
    start_date: date = date(2026, 11, 1),
    days: int = 7,
    seed: int = 42,
    progress: ProgressReporter = SILENT,
) -> Iterator[pd.DataFrame]:
    """`n_rows` messages as `generate_logs` makes them, in frames of at most `batch_rows`, so
    whoever inserts them holds one batch at a time.

    Each batch is a `generate_logs` sample of its own over the whole period (its later messages
    follow its own base rows); the first has `seed` itself, so up to `batch_rows` rows are
    exactly `generate_logs(n_rows=..., seed=seed)`, and the rest have seeds derived from it.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    for i, first in enumerate(range(0, n_rows, batch_rows)):
        yield generate_logs(
            taxonomy,
            n_rows=min(batch_rows, n_rows - first),
            start_date=start_date,
            days=days,
            seed=seed if i == 0 else int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
            progress=progress,
        )


def _later_messages(
    base: pd.DataFrame,
    languages: Sequence[Language],
    counts: Mapping[str, int],
    np_rng: np.random.Generator,
    text_rng: random.Random,
    start: date,
    days: int,
) -> list[pd.DataFrame]:
    """Messages the authors of substantive base rows send later: exact resubmissions (same
    session, minutes later), near copies (new session, hours later) and contentless chat
    follow-ups (same session, same true domain - only the conversation tells what they are)."""
    eligible = np.flatnonzero(base["text"].str.strip().str.len() >= _MIN_DUPLICATED_LENGTH)
    if not len(eligible):
        return []
    last_ns = (
        int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) + days * 86_400
    ) * 1_000_000_000 - 1
    messages = []
    for kind in _LATER_KINDS:
        picked = np_rng.choice(eligible, size=counts[kind])
        rows = base.iloc[picked].copy()
        low, high = _LATER_DELAY_S[kind]
        resent = rows["ts"].to_numpy() + np_rng.integers(low, high, size=len(rows)) * 10**9
        rows["ts"] = np.where(resent <= last_ns, resent, rows["ts"].to_numpy())
        if kind == "near_duplicate":
            rows["text"] = [near_variant(t, text_rng) for t in rows["text"].tolist()]
            rows["session_id"] = session_ids(np_rng, len(rows))
        elif kind == "follow_up":
            planted: list[list[tuple[str, str]]] | None = (
                [] if "planted_pii" in rows.columns else None
            )
            rows["text"] = [
                recording(planted, follow_up)(languages[i], channel == "phone_transcript", text_rng)
                for i, channel in zip(picked.tolist(), rows["channel"].tolist(), strict=True)
            ]
            if planted is not None:
                rows["planted_pii"] = pd.Series(planted, index=rows.index, dtype=object)
        messages.append(rows)
    return messages
