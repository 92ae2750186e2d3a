"""A refresh relabels only what it must: the labelling model refits on a schedule of decision
growth (`pipeline.labeler.snapshot`), and a day whose cleaned texts and model are unchanged
keeps its stored labels, its file and its data version."""

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetSpec, materialize

from esk_pipeline.assets import labeling
from esk_pipeline.assets.partitions import daily_partitions
from esk_pipeline.pipeline.labeler import LabelerAgent
from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy
from esk_pipeline.resources.io_manager import AssetFilesIOManager
from esk_pipeline.resources.llm import LabelerResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import Settings

DAYS = ["2026-11-03", "2026-11-04"]
RANGE = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}
TEXTS = [
    "нет горячей воды уже третий день",
    "передать показания счётчика воды",
    "подскажите кому писать по такому вопросу",
    "когда вывезут мусор со двора",
]


@pytest.fixture
def folder(project_env, monkeypatch):
    """Two days of cleaned texts, no decisions yet; the model refits at 4 new decisions, or at
    half the snapshot once it holds more than 8."""
    monkeypatch.setenv("LABELER_REFIT_MIN_NEW", "4")
    monkeypatch.setenv("LABELER_REFIT_GROWTH", "0.5")
    taxonomy = project_env / "taxonomy.yaml"
    taxonomy.write_text(Path(DEFAULT_TAXONOMY_PATH).read_text(encoding="utf-8"), "utf-8")
    monkeypatch.setenv("APP_TAXONOMY_PATH", str(taxonomy))
    assets = project_env / "assets"
    (assets / "cleaned_texts").mkdir(parents=True)
    for day in DAYS:
        pd.DataFrame(
            {
                "row_id": [f"{day}-{i}" for i in range(len(TEXTS))],
                "text": TEXTS,
                "ts": pd.Timestamp(day, tz="UTC"),
                "user_id": "u1",
            }
        ).to_parquet(assets / "cleaned_texts" / f"{day}.parquet")
    _decide(assets, [])
    return assets


def _decide(assets: Path, pairs: list[tuple[str, str]]) -> None:
    """The review store's decisions, as the labels asset reads them."""
    pd.DataFrame(
        {
            "row_id": [f"v{i}" for i in range(len(pairs))],
            "text": [t for t, _ in pairs],
            "domain": [d for _, d in pairs],
            "review_status": "approved",
        },
        columns=["row_id", "text", "domain", "review_status"],
    ).to_parquet(assets / "verified_labels.parquet")


def _decisions(n: int, start: int = 0) -> list[tuple[str, str]]:
    ids = Taxonomy.load(DEFAULT_TAXONOMY_PATH).ids
    return [(f"обращение номер {i} по теме {i % 5}", ids[i % 5]) for i in range(start, start + n)]


@pytest.fixture
def classify_calls(monkeypatch) -> list[int]:
    """The texts of every classify call the labeler makes."""
    calls: list[int] = []
    classify = LabelerAgent.classify_dataframe

    async def counted(self, df, **kwargs):
        calls.append(len(df))
        return await classify(self, df, **kwargs)

    monkeypatch.setattr(LabelerAgent, "classify_dataframe", counted)
    return calls


def _refresh(assets: Path, **tags: str) -> dict[str, dict]:
    """A refresh's labels step over both days: per day, its metadata and data version."""
    settings = Settings.load()
    partitions = daily_partitions(settings.app.partitions_start_date)
    upstream = [AssetSpec("cleaned_texts", partitions_def=partitions), AssetSpec("verified_labels")]
    result = materialize(
        [labeling.build_labels_asset(partitions), labeling.taxonomy, *upstream],
        selection=["labels"],
        tags=RANGE | tags,
        resources={
            "io_manager": AssetFilesIOManager(base_dir=str(assets)),
            "taxonomy_file": TaxonomyResource.from_settings(settings),
            "labeler": LabelerResource.from_settings(settings),
        },
    )
    assert result.success
    return {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        | {"data_version": m.tags["dagster/data_version"]}
        for m in result.asset_materializations_for_node("labels")
    }


def _files(assets: Path) -> dict[str, tuple]:
    """Each labels day's file as the file system knows it (rewritten: another inode/time)."""
    return {
        day: (s.st_ino, s.st_mtime_ns, s.st_size)
        for day in DAYS
        if (s := (assets / "labels" / f"{day}.parquet").stat())
    }


def test_a_refresh_below_the_growth_threshold_keeps_every_day_as_stored(folder, classify_calls):
    _decide(folder, _decisions(10))
    first = _refresh(folder)
    assert all(m["labelled"] == "labelled: a new day" for m in first.values())
    assert len(classify_calls) == 2
    files = _files(folder)

    # 4 new (under half of the 10 the model knows), and one decision confirmed again: the
    # store then gives it a later time and row order, its pair stays.
    decided = _decisions(14)
    _decide(folder, [*decided[1:], decided[0]])
    again = _refresh(folder)
    assert len(classify_calls) == 2  # no classify call for either day
    assert _files(folder) == files
    for day in DAYS:
        assert again[day]["labelled"] == f"reused (model {first[day]['labelling_model']})"
        assert again[day]["data_version"] == first[day]["data_version"]
        assert again[day]["rows_kept"] == again[day]["dagster/row_count"] == len(TEXTS)
        assert again[day]["model_refit"] == "no"
        assert again[day]["model_new_verified_labels"] == 4


def test_a_refresh_past_the_threshold_refits_and_relabels(folder, classify_calls):
    _decide(folder, _decisions(10))
    first = _refresh(folder)
    _decide(folder, _decisions(15))  # 5 new: half of 10
    again = _refresh(folder)
    assert len(classify_calls) == 4
    for day in DAYS:
        assert again[day]["model_refit"] == "5 new verified labels (refit at 5)"
        assert again[day]["labelled"].startswith("relabelled: model refit (5 new")
        assert again[day]["labelling_model"] != first[day]["labelling_model"]
        assert again[day]["data_version"] != first[day]["data_version"]
        assert again[day]["model_verified_labels"] == 15
    # The next refresh starts from the new snapshot: nothing new, nothing relabelled.
    assert all(m["labelled"].startswith("reused") for m in _refresh(folder).values())
    assert len(classify_calls) == 4


def test_a_reversed_decision_refits_the_model(folder, classify_calls):
    decided = _decisions(10)
    _decide(folder, decided)
    _refresh(folder)
    text, domain = decided[3]
    other = next(d for d in Taxonomy.load(DEFAULT_TAXONOMY_PATH).ids if d != domain)
    _decide(folder, [*decided[:3], (text, other), *decided[4:]])  # a person reversed one
    again = _refresh(folder)
    assert len(classify_calls) == 4
    for day in DAYS:
        reason = "1 verified label(s) in the snapshot changed or withdrawn"
        assert again[day]["model_refit"] == reason
        assert again[day]["labelled"].startswith("relabelled: model refit (1 verified")


def test_a_taxonomy_change_relabels_every_day(folder, classify_calls, project_env):
    _decide(folder, _decisions(10))
    _refresh(folder)
    taxonomy = project_env / "taxonomy.yaml"
    edited = taxonomy.read_text(encoding="utf-8").replace(
        "      - нет горячей воды уже третий день\n",
        "      - нет горячей воды уже третий день\n      - в квартире нет воды\n",
    )
    taxonomy.write_text(edited, encoding="utf-8")
    again = _refresh(folder)
    assert len(classify_calls) == 4
    for day in DAYS:
        assert again[day]["model_refit"] == "the taxonomy changed"
        assert again[day]["labelled"] == "relabelled: model refit (the taxonomy changed)"


def test_a_forced_relabel_refits_and_labels_every_day(folder, classify_calls):
    _decide(folder, _decisions(10))
    first = _refresh(folder)
    files = _files(folder)
    again = _refresh(folder, **{labeling.RELABEL_TAG: "true"})
    assert len(classify_calls) == 4
    for day in DAYS:
        assert again[day]["labelled"] == "relabelled: forced"
        # The same decisions give the same model and the same labels: same bytes, same file.
        assert again[day]["labelling_model"] == first[day]["labelling_model"]
        assert again[day]["data_version"] == first[day]["data_version"]
    assert _files(folder) == files


def test_a_day_stored_before_labels_recorded_their_model_says_so(folder, classify_calls):
    _decide(folder, _decisions(10))
    _refresh(folder)
    for day in DAYS:  # as an earlier release wrote it: no record of its model
        path = folder / "labels" / f"{day}.parquet"
        frame = pd.read_parquet(path)
        frame.attrs = {}
        frame.to_parquet(path)
    again = _refresh(folder)
    assert len(classify_calls) == 4
    for day in DAYS:
        assert again[day]["labelled"] == (
            "relabelled: made before labels days recorded their labelling model"
        )
    assert all(m["labelled"].startswith("reused") for m in _refresh(folder).values())
