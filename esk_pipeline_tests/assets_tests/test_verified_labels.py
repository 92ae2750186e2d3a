"""`verified_labels`' data version: it changes exactly when what the graph reads of the
decisions changes, so the assets made from them show stale then (and automation follows)."""

from esk_pipeline.assets.review import verified_labels
from esk_pipeline.pipeline.review import ReviewReason
from esk_pipeline.resources.stores import ReviewStoreResource
from esk_pipeline.resources.taxonomy import TaxonomyResource
from esk_pipeline.settings import Settings


def test_a_doubt_raised_on_a_decision_is_a_new_data_version(project_env):
    """A doubted decision stands but leaves eval for train (`VerdictReason.DOUBTED_HUMAN`),
    so trusted labels made before the doubt are stale."""
    settings = Settings.load()
    taxonomy_file = TaxonomyResource.from_settings(settings)
    review_store = ReviewStoreResource.from_settings(settings).model_copy(
        update={"second_opinion_confidence": None}
    )

    def version() -> str:
        observed = verified_labels.observe_fn(
            taxonomy_file=taxonomy_file, review_store=review_store
        )
        return observed.data_version.value

    taxonomy = taxonomy_file.load()
    domain = taxonomy.ids[0]
    with review_store.open(taxonomy) as store:
        store.add_items([{"row_id": "a", "text": "текст a", "domain": domain, "confidence": 0.4}])
        [item] = store.get_next(1, "alice")
        store.submit_review(item.id, taxonomy.ids[1], "alice")
    decided = version()
    assert version() == decided  # nothing new: the same version
    with review_store.open(taxonomy) as store:
        assert store.request_second_opinion(["a"], ReviewReason.POSSIBLE_LABEL_ERROR) == 1
        assert store.verified_labels()["doubt_pending"].tolist() == [True]
    assert version() != decided
