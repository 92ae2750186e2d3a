"""Named parts in a folder (`pipeline.parts`): the manifest, lazy reads, the clean-up."""

import pandas as pd

from esk_pipeline.pipeline.parts import FolderPartStore, FrameParts, PartRecord, digest


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
