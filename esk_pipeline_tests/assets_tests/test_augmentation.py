"""`synthetic_samples` balances what train will hold."""

import pandas as pd
from dagster import build_asset_context

from esk_pipeline.assets.augmentation import synthetic_samples
from esk_pipeline.definitions import build_resources
from esk_pipeline.pipeline.splits import drawn_for_eval
from esk_pipeline.settings import Settings

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


def test_no_source_is_paraphrased_whose_group_the_splits_draw_for_eval(project_env):
    settings = Settings()
    resources = build_resources(settings)
    rare = _trusted(
        [f"мусор не вывозят {i} дней во дворе дома {i * 7}" for i in range(40)],
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
    day = pd.concat([rare, common], ignore_index=True)
    writer = settings.data_writer
    drawn = set(
        day.loc[drawn_for_eval(day, seed=writer.seed, eval_fraction=writer.eval_fraction), "row_id"]
    )
    assert 5 < len(drawn) < len(rare)  # some of the rare domain's sources are eval's

    output = synthetic_samples(
        build_asset_context(),
        trusted_labels={"2026-11-01": day},
        verified_labels=rare[["text", "domain"]],
        **{
            name: resources[name]
            for name in ("taxonomy_file", "labeler", "augmenter", "dataset_store")
        },
    )
    samples = output.value
    assert (samples["domain"] == RARE).sum() > 0
    assert not set(samples["source_row_id"]) & drawn


def test_a_small_domains_drawn_sources_are_paraphrased_as_it_stays_in_train(project_env):
    """A domain with fewer real records than DATA_WRITER_MIN_SAMPLES_PER_DOMAIN is train-only:
    the splits put none of its records in eval, drawn or not, so all are sources."""
    settings = Settings()
    resources = build_resources(settings)
    writer = settings.data_writer
    rare = _trusted(
        [f"мусор не вывозят {i} дней во дворе дома {i * 7}" for i in range(4)],
        RARE,
        label_origin="human_verified",
        label_source="reviewer:alice",
        review_reason="audit",
    )
    assert len(rare) < writer.min_samples_per_domain and writer.small_domain_policy == "train_only"
    common = _trusted(
        [f"передаю показания счётчика воды {i} кубов за месяц {i * 3}" for i in range(200)],
        COMMON,
        label_origin="local_model",
        label_source="local",
        review_reason=None,
    )
    day = pd.concat([rare, common], ignore_index=True)
    drawn = set(
        day.loc[drawn_for_eval(day, seed=writer.seed, eval_fraction=writer.eval_fraction), "row_id"]
    )
    assert drawn  # without the small-domain rule these would be left out

    output = synthetic_samples(
        build_asset_context(),
        trusted_labels={"2026-11-01": day},
        verified_labels=rare[["text", "domain"]],
        **{
            name: resources[name]
            for name in ("taxonomy_file", "labeler", "augmenter", "dataset_store")
        },
    )
    assert set(output.value["source_row_id"]) == set(rare["row_id"])
