"""Named parts in a folder (`pipeline.parts`): the manifest, lazy reads, the clean-up."""

import os
import time

import pandas as pd

from esk_pipeline.pipeline import fsutil
from esk_pipeline.pipeline.parts import (
    FolderPartStore,
    FrameParts,
    PartRecord,
    changes_since,
    digest,
    patch,
    row_hashes,
)


def test_parts_are_read_through_the_manifest_and_a_fresh_stray_file_survives_the_clean_up(
    tmp_path,
):
    store = FolderPartStore(tmp_path / "value")
    assert store.manifest() is None
    frames = {"2026-11-01": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "rest": pd.DataFrame()}
    records = {}
    for name, frame in frames.items():
        address = digest(name, frame.to_json())
        store.write(address, frame)
        records[name] = PartRecord(address, {"base": name})
    store.write("stray", pd.DataFrame({"a": [0]}))  # a run still making its parts wrote it
    store.write_manifest(records)

    parts = FrameParts(store, store.manifest())
    assert parts.records == records
    pd.testing.assert_frame_equal(parts["2026-11-01"], frames["2026-11-01"])
    assert list(parts.columns("2026-11-01", ["b"]).columns) == ["b"]
    keep = [r.address for r in records.values()]
    assert store.collect_garbage(keep, older_than=3600) == 0
    assert store.collect_garbage(keep) == 1
    assert sorted(p.name for p in (tmp_path / "value").iterdir()) == sorted(
        [f"{a}.parquet" for a in keep] + ["manifest.json"]
    )


def test_a_digest_tells_its_pieces_apart():
    assert digest("ab", "c") != digest("a", "bc")
    assert digest(b"x") == digest("x")


def test_an_overlay_drops_and_changes_rows_when_read_and_summaries_follow_the_content(tmp_path):
    store = FolderPartStore(tmp_path / "value")
    frame = pd.DataFrame({"row_id": ["r1", "r2", "r3"], "verdict": ["q", "q", "t"], "n": [1, 2, 3]})
    store.write("base", frame)
    overlay = pd.DataFrame(
        {
            "row": row_hashes(pd.Series(["r1", "r3", "elsewhere"])),
            "drop": [True, False, True],
            "verdict": [None, "x", None],
        }
    )
    store.write("over", overlay)
    plain = FrameParts(store, {"day": PartRecord("base")})
    parts = FrameParts(store, {"day": PartRecord("base", overlay="over")})
    expected = pd.DataFrame({"row_id": ["r2", "r3"], "verdict": ["q", "x"], "n": [2, 3]})
    pd.testing.assert_frame_equal(parts["day"], expected)
    pd.testing.assert_frame_equal(patch(parts["day"], overlay), expected)  # twice: the same
    pd.testing.assert_frame_equal(parts.columns("day", ["n"]), expected[["n"]])

    made = []

    def count(part: pd.DataFrame) -> dict[str, pd.DataFrame]:
        made.append(len(part))
        return {"rows": pd.DataFrame({"n": [len(part)]}), "other": part.head(0)}

    assert parts.derived("day", "rows", ["n"], count)["n"].tolist() == [2]
    assert parts.derived("day", "rows", ["n"], count)["n"].tolist() == [2]  # kept: not made
    assert plain.derived("day", "rows", ["n"], count)["n"].tolist() == [3]  # another content
    assert made == [2, 3]
    store.write("gone", frame)
    assert store.collect_garbage(["base", "over"]) == 1  # summaries stay with their part
    assert store.collect_garbage(["base"]) == 3  # the overlay and its content's summaries go
    left = sorted(p.name for p in (tmp_path / "value").iterdir())
    assert left == ["base.other.parquet", "base.parquet", "base.rows.parquet"]


def test_the_changes_since_the_last_manifest_name_what_made_a_part_again():
    last = {
        "a": PartRecord("x", {"day": "1", "rules": "r"}),
        "b": PartRecord("y", {"day": "2", "rules": "r"}),
        "c": PartRecord("z", {"day": "3", "rules": "r"}),
        "d": PartRecord("w", {"day": "4", "rules": "r"}),
    }
    now = {
        "a": PartRecord("x", {"day": "1", "rules": "r"}),
        "b": PartRecord("y", {"day": "2", "rules": "r"}, overlay="o"),
        "c": PartRecord("z2", {"day": "3", "rules": "r2"}),
        "e": PartRecord("v", {"day": "5", "rules": "r2"}),
    }
    assert changes_since(last, now) == {
        "a": "unchanged",
        "b": "overlay",
        "c": "made again: rules",
        "d": "gone",
        "e": "new",
    }


def test_what_an_interrupted_write_left_in_the_folder_goes_with_the_clean_up(tmp_path):
    """A run killed while writing a part leaves its temporary file (`fsutil.temp_path`): no
    manifest can name it, so once older than the grace it goes like a stray part; a young one
    may be another run's write in flight and stays."""
    store = FolderPartStore(tmp_path / "value")
    store.write("kept", pd.DataFrame({"a": [1]}))
    store.write_manifest({"kept": PartRecord("kept")})
    old = fsutil.temp_path(tmp_path / "value" / "gone.parquet")
    old.write_bytes(b"half a part")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = fsutil.temp_path(tmp_path / "value" / "writing.parquet")
    young.write_bytes(b"a part in flight")
    assert store.collect_garbage(["kept"], older_than=3600) == 1
    assert sorted(p.name for p in (tmp_path / "value").iterdir()) == sorted(
        ["kept.parquet", "manifest.json", young.name]
    )
