"""The labelling model's snapshot: a ladder of sizes, and the first decisions up to it."""

from esk_pipeline.pipeline.labeler.snapshot import RefitRule, TrainingSnapshot, refit_reason
from esk_pipeline.pipeline.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy


def test_the_ladder_steps_by_the_minimum_then_by_the_growth_share():
    rule = RefitRule(min_new=20, growth=0.1)
    points = sorted({rule.snapshot_size(n) for n in range(0, 300)})
    assert points == [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220, 242, 267, 294]
    assert rule.snapshot_size(19) == 0 and rule.snapshot_size(266) == 242


def test_the_snapshot_is_the_first_distinct_decisions_and_says_why_it_changed():
    taxonomy = Taxonomy.load(DEFAULT_TAXONOMY_PATH)
    domain, other = taxonomy.ids[:2]
    rule = RefitRule(min_new=2, growth=0.0)
    decided = [("a", domain), ("a", domain), ("b", domain), ("c", other), ("", domain)]
    snapshot = TrainingSnapshot.of(taxonomy, decided, rule)
    # Three distinct usable pairs: the ladder's point at or below 3 is 2, the first two.
    assert snapshot.verified == (("a", domain), ("b", domain)) and snapshot.decided == 3
    assert refit_reason(None, snapshot) == "no snapshot stored yet"
    assert refit_reason(snapshot, TrainingSnapshot.of(taxonomy, decided[::-1], rule)) == (
        "1 verified label(s) in the snapshot changed or withdrawn"
    )
    grown = TrainingSnapshot.of(taxonomy, [*decided, ("d", other)], rule)
    assert refit_reason(snapshot, grown) == "the decisions reached 4 (from 2)"
    assert refit_reason(snapshot, TrainingSnapshot.from_json(snapshot.to_json())) is None
