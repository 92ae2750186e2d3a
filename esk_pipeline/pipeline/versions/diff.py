"""Record-level diffs between two versions: added, removed, relabelled, moved, per domain.

Versions are compared shard by shard first: a data file whose Parquet copy has the same
checksum in the same split on both sides holds the same records with the same labels, so it
is counted from the manifests (`FileEntry.domains`) and never read, whatever its name.
The records of the other shards are matched on row_id with one Arrow full outer join of the
two sides' (row_id, domain, split) tables (records.py). The report carries counts, a few
examples of each kind of change and a short summary for people. (Row ids are unique within
a version as the writer makes it; were one repeated across shards, the first occurrence
among the shards read counts.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from ._layout import data_files, parquet_name, split_of
from ._records import records_table
from .models import DatasetVersion, FileEntry

__all__ = [
    "Counts",
    "DomainChange",
    "RelabelledExample",
    "SplitMove",
    "VersionDiff",
    "diff_tables",
    "diff_versions",
    "unchanged_shards",
]

Counts = dict[tuple[str, str], int]


class DomainChange(BaseModel):
    before: int
    after: int
    delta: int
    train_before: int
    train_after: int
    eval_before: int
    eval_after: int


class RelabelledExample(BaseModel):
    row_id: str
    old_domain: str | None
    new_domain: str | None
    split: str | None


class SplitMove(BaseModel):
    row_id: str
    old_split: str
    new_split: str


class VersionDiff(BaseModel):
    """Record-level changes from one version to another, keyed by row_id."""

    from_version: str
    to_version: str
    records_before: int
    records_after: int
    added: int
    removed: int
    relabelled: int
    moved: int
    unchanged: int
    domain_changes: dict[str, DomainChange]
    relabel_pairs: dict[str, int] = Field(description='"old -> new": count, most frequent first')
    added_examples: list[str]
    removed_examples: list[str]
    relabelled_examples: list[RelabelledExample]
    moved_examples: list[SplitMove]
    files_changed: list[str]
    summary: str


def unchanged_shards(
    old_entry: DatasetVersion, new_entry: DatasetVersion
) -> tuple[set[str], set[str]]:
    """Data files of the old and of the new version paired by content: the same split and the
    same Parquet copy (with its counts known) on both sides, whatever their names (a new day
    renumbers the shards)."""

    def by_content(entry: DatasetVersion) -> dict[tuple[str, str], list[str]]:
        found: dict[tuple[str, str], list[str]] = {}
        for name in data_files(entry.files):
            copy = entry.files.get(parquet_name(name))
            if copy is not None and copy.domains is not None:
                found.setdefault((split_of(name), copy.sha256), []).append(name)
        return found

    old, new = by_content(old_entry), by_content(new_entry)
    old_same: set[str] = set()
    new_same: set[str] = set()
    for key in old.keys() & new.keys():
        pairs = min(len(old[key]), len(new[key]))
        old_same.update(old[key][:pairs])
        new_same.update(new[key][:pairs])
    return old_same, new_same


def diff_versions(
    old_entry: DatasetVersion,
    new_entry: DatasetVersion,
    open_old: Callable[[str], IO[bytes]],
    open_new: Callable[[str], IO[bytes]],
    examples: int,
) -> VersionDiff:
    """The diff from `old_entry` to `new_entry`, reading only the shards that changed."""
    old_same, new_same = unchanged_shards(old_entry, new_entry)
    old = records_table(sorted(set(data_files(old_entry.files)) - old_same), open_old)
    new = records_table(sorted(set(data_files(new_entry.files)) - new_same), open_new)
    shared: Counts = {}
    for name in new_same:
        for domain, n in (new_entry.files[parquet_name(name)].domains or {}).items():
            key = (domain, split_of(name))
            shared[key] = shared.get(key, 0) + n
    return diff_tables(old_entry, new_entry, old, new, examples, shared)


def diff_tables(
    old_entry: DatasetVersion,
    new_entry: DatasetVersion,
    old: pa.Table,
    new: pa.Table,
    examples: int,
    shared: Counts | None = None,
) -> VersionDiff:
    """The diff from `old` to `new` ((row_id, domain, split) tables of the two entries'
    changed shards); `shared` counts the records of unchanged shards by (domain, split)."""
    shared = shared or {}
    shared_records = sum(shared.values())
    old = old.append_column("in_old", pa.array([True] * len(old), pa.bool_()))
    new = new.append_column("in_new", pa.array([True] * len(new), pa.bool_()))
    joined = old.join(
        new, keys="row_id", join_type="full outer", left_suffix="_old", right_suffix="_new"
    )
    in_old = pc.fill_null(joined["in_old"], False)
    in_new = pc.fill_null(joined["in_new"], False)
    both = pc.and_(in_old, in_new)
    relabel_mask = pc.and_(
        both, pc.fill_null(pc.not_equal(joined["domain_old"], joined["domain_new"]), True)
    )
    move_mask = pc.and_(both, pc.not_equal(joined["split_old"], joined["split_new"]))
    added_rows = joined.filter(pc.and_(in_new, pc.invert(in_old)))
    removed_rows = joined.filter(pc.and_(in_old, pc.invert(in_new)))
    relabelled = joined.filter(relabel_mask)
    moved = joined.filter(move_mask)
    changed = pc.or_(relabel_mask, move_mask)
    unchanged = int(pc.sum(pc.and_(both, pc.invert(changed))).as_py() or 0)

    pairs = (
        relabelled.group_by(["domain_old", "domain_new"])
        .aggregate([("row_id", "count")])
        .to_pylist()
    )
    pairs.sort(key=lambda p: (-p["row_id_count"], str(p["domain_old"]), str(p["domain_new"])))
    relabel_pairs = {f"{p['domain_old']} -> {p['domain_new']}": p["row_id_count"] for p in pairs}

    def first(table: pa.Table) -> pa.Table:
        return table.take(pc.select_k_unstable(table, examples, [("row_id", "ascending")]))

    diff = VersionDiff(
        from_version=old_entry.version,
        to_version=new_entry.version,
        records_before=len(old) + shared_records,
        records_after=len(new) + shared_records,
        added=len(added_rows),
        removed=len(removed_rows),
        relabelled=len(relabelled),
        moved=len(moved),
        unchanged=unchanged + shared_records,
        domain_changes=_domain_changes(old, new, shared),
        relabel_pairs=relabel_pairs,
        added_examples=sorted(first(added_rows)["row_id"].to_pylist()),
        removed_examples=sorted(first(removed_rows)["row_id"].to_pylist()),
        relabelled_examples=sorted(
            (
                RelabelledExample(
                    row_id=r["row_id"],
                    old_domain=r["domain_old"],
                    new_domain=r["domain_new"],
                    split=r["split_new"],
                )
                for r in first(relabelled).to_pylist()
            ),
            key=lambda e: e.row_id,
        ),
        moved_examples=sorted(
            (
                SplitMove(row_id=r["row_id"], old_split=r["split_old"], new_split=r["split_new"])
                for r in first(moved).to_pylist()
            ),
            key=lambda e: e.row_id,
        ),
        files_changed=sorted(
            name
            for name in set(old_entry.files) | set(new_entry.files)
            if name != "metadata.json"
            and (old_entry.files.get(name) or FileEntry(sha256="", size=0)).sha256
            != (new_entry.files.get(name) or FileEntry(sha256="", size=0)).sha256
        ),
        summary="",
    )
    diff.summary = _summary(diff)
    return diff


def _domain_changes(old: pa.Table, new: pa.Table, shared: Counts) -> dict[str, DomainChange]:
    def counts(table: pa.Table) -> Counts:
        rows = table.group_by(["domain", "split"]).aggregate([("row_id", "count")]).to_pylist()
        found = dict(shared)
        for r in rows:
            key = (str(r["domain"]), r["split"])
            found[key] = found.get(key, 0) + r["row_id_count"]
        return found

    before, after = counts(old), counts(new)
    domains = sorted({d for d, _ in before} | {d for d, _ in after})
    changes = {}
    for d in domains:
        tb, eb = before.get((d, "train"), 0), before.get((d, "eval"), 0)
        ta, ea = after.get((d, "train"), 0), after.get((d, "eval"), 0)
        changes[d] = DomainChange(
            before=tb + eb,
            after=ta + ea,
            delta=ta + ea - tb - eb,
            train_before=tb,
            train_after=ta,
            eval_before=eb,
            eval_after=ea,
        )
    return changes


def _summary(diff: VersionDiff) -> str:
    """Two or three sentences a person reads in seconds."""
    delta = diff.records_after - diff.records_before
    text = (
        f"{diff.from_version} -> {diff.to_version}: {diff.records_before:,} -> "
        f"{diff.records_after:,} records ({delta:+,}); {diff.added:,} added, {diff.removed:,} "
        f"removed, {diff.relabelled:,} relabelled, {diff.moved:,} moved between train and eval."
    )
    shifts = sorted(
        ((d, c.delta) for d, c in diff.domain_changes.items() if c.delta),
        key=lambda x: (-abs(x[1]), x[0]),
    )[:3]
    if shifts:
        text += " Biggest domain changes: " + ", ".join(f"{d} {n:+,}" for d, n in shifts) + "."
    if diff.relabel_pairs:
        pair, n = next(iter(diff.relabel_pairs.items()))
        text += f" Most common relabel: {pair} ({n:,})."
    if not (diff.added or diff.removed or diff.relabelled or diff.moved):
        text += " The records are identical."
    return text
