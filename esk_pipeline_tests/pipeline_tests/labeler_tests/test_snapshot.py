"""The labelling model's snapshot and when a refresh refits it."""

from esk_pipeline.pipeline.labeler.snapshot import RefitRule, TrainingSnapshot, refit_reason
from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy


def test_the_threshold_is_the_minimum_then_a_share_of_the_snapshot():
    rule = RefitRule(min_new=20, growth=0.1)
    assert [rule.threshold(n) for n in (0, 150, 200, 201, 2000)] == [20, 20, 20, 21, 200]


def test_a_snapshot_is_its_distinct_pairs_whatever_their_order_and_says_why_it_changed():
    taxonomy = Taxonomy.load(DEFAULT_TAXONOMY_PATH)
    domain, other = taxonomy.ids[:2]
    rule = RefitRule(min_new=2, growth=0.0)
    decided = [("a", domain), ("a", domain), ("b", domain), ("", domain), ("c", "retired")]
    snapshot = TrainingSnapshot.of(taxonomy, decided)
    assert snapshot.verified == (("a", domain), ("b", domain))
    assert TrainingSnapshot.of(taxonomy, decided[::-1]) == snapshot
    assert refit_reason(None, snapshot, rule) == "no snapshot stored yet"
    assert refit_reason(snapshot, TrainingSnapshot.from_json(snapshot.to_json()), rule) is None
    one_new = TrainingSnapshot.of(taxonomy, [*decided, ("c", other)])
    assert refit_reason(snapshot, one_new, rule) is None  # 1 new of the 2 needed
    two_new = TrainingSnapshot.of(taxonomy, [*decided, ("c", other), ("d", other)])
    assert refit_reason(snapshot, two_new, rule) == "2 new verified labels (refit at 2)"
    reversed_ = TrainingSnapshot.of(taxonomy, [("a", other), ("b", domain)])
    assert refit_reason(snapshot, reversed_, rule) == (
        "1 verified label(s) in the snapshot changed or withdrawn"
    )
