"""`synthetic_samples` balances what train will hold."""

from collections.abc import Mapping

import pandas as pd
from dagster import build_asset_context

from esk_pipeline.assets.augmentation import synthetic_samples
from esk_pipeline.definitions import build_resources
from esk_pipeline.pipeline.parts import FrameParts, PartRecord, row_hashes
from esk_pipeline.pipeline.splits import drawn_for_eval
from esk_pipeline.settings import Settings
from esk_pipeline_tests.fakes.parts import CountingPartStore

RARE = "waste"
COMMON = "meter_readings"


def _trusted(texts: list[str], domain: str, **columns) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": [f"{domain}-{i}" for i in range(len(texts))],
            "text": texts,
            "domain": domain,
            "confidence": 0.99,
            "status": "labeled",
            "trusted": True,
            **columns,
        }
    )


def _day(n_rare: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(a day of trusted rows, its rare domain's audited human labels): the rare domain needs
    paraphrases, the common one is machine-labelled."""
    rare = _trusted(
        [f"мусор не вывозят {i} дней во дворе дома {i * 7}" for i in range(n_rare)],
        RARE,
        label_origin="human_verified",
        label_source="reviewer:alice",
        review_reason="audit",
    )
    common = _trusted(
        [f"передаю показания счётчика воды {i} кубов за месяц {i * 3}" for i in range(200)],
        COMMON,
        label_origin="local_model",
        label_source="local",
        review_reason=None,
    )
    return pd.concat([rare, common], ignore_index=True), rare


def _drawn(settings: Settings, day: pd.DataFrame) -> set[str]:
    writer = settings.data_writer
    chosen = drawn_for_eval(day, seed=writer.seed, eval_fraction=writer.eval_fraction)
    return set(day.loc[chosen, "row_id"])


def _samples(
    settings: Settings, day: pd.DataFrame | Mapping[str, pd.DataFrame], rare: pd.DataFrame
) -> pd.DataFrame:
    resources = build_resources(settings)
    output = synthetic_samples(
        build_asset_context(),
        trusted_labels={"2026-11-01": day} if isinstance(day, pd.DataFrame) else day,
        verified_labels=rare[["text", "domain"]],
        **{
            name: resources[name]
            for name in ("taxonomy_file", "labeler", "augmenter", "dataset_store")
        },
    )
    return output.value


def test_no_source_is_paraphrased_whose_group_the_splits_draw_for_eval(project_env):
    settings = Settings()
    day, rare = _day(40)
    drawn = _drawn(settings, day)
    assert 5 < len(drawn) < len(rare)  # some of the rare domain's sources are eval's
    samples = _samples(settings, day, rare)
    assert (samples["domain"] == RARE).sum() > 0
    assert not set(samples["source_row_id"]) & drawn


def test_a_small_domains_drawn_sources_are_paraphrased_as_it_stays_in_train(project_env):
    """A domain with fewer real records than DATA_WRITER_MIN_SAMPLES_PER_DOMAIN is train-only:
    the splits put none of its records in eval, drawn or not, so all are sources."""
    settings = Settings()
    writer = settings.data_writer
    day, rare = _day(4)
    assert len(rare) < writer.min_samples_per_domain and writer.small_domain_policy == "train_only"
    assert _drawn(settings, day)  # without the small-domain rule these would be left out
    samples = _samples(settings, day, rare)
    assert set(samples["source_row_id"]) == set(rare["row_id"])


def test_a_parts_sources_are_kept_beside_it_and_read_again_only_when_it_changes(project_env):
    """The trusted rows the augmenter reads of a part are a summary kept beside it: a run over
    unchanged parts reads no part, the summary follows the part's overlay, and a changed part
    is read again. The samples are those of the same rows given as one frame."""
    settings = Settings()
    day, rare = _day(40)
    # As stored parts hold them (the augmenter computes a missing identity key).
    day = day.assign(identity_key=None, verdict_reason="accepted")
    store = CountingPartStore()
    store.write("stored", day)
    # The overlay leaves out a rare-domain row, as one another day took would be.
    taken = rare["row_id"].iloc[:1]
    store.write(
        "overlay",
        pd.DataFrame({"row": row_hashes(taken), "drop": [True], "verdict": [None]}),
    )
    parts = FrameParts(store, {"2026-11-01": PartRecord("stored", overlay="overlay")})
    as_read = day[~day["row_id"].isin(taken)].reset_index(drop=True)
    expected = _samples(settings, as_read, rare)
    assert len(expected)

    for _ in range(2):
        store.reads.clear()
        pd.testing.assert_frame_equal(_samples(settings, parts, rare), expected)
    assert "stored" not in store.reads
    assert [a for a in store.reads if a.startswith("stored.augment-sources-")]

    # Made again with a rare row no longer trusted: a new address, read once.
    changed = day.assign(trusted=~day["row_id"].eq(rare["row_id"].iloc[1]))
    store.write("changed", changed)
    parts = FrameParts(store, {"2026-11-01": PartRecord("changed")})
    store.reads.clear()
    samples = _samples(settings, parts, rare)
    assert store.reads["changed"] == 1
    pd.testing.assert_frame_equal(samples, _samples(settings, changed, rare))
