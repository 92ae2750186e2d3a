"""The labelling model's training snapshot, and when a refresh must take a new one.

The labeler's local model (and the few-shot pool) learns from the human-verified labels. If it
were fitted on every decision, every dataset refresh would change the model and relabel every
day of history, although the decisions themselves reach the dataset through `trusted_labels`
(a decision overrides the machine label) whatever the model. So the model is fitted on a
snapshot: the taxonomy's fingerprint and the verified (text, domain) pairs of the first decisions
in decision order, as many as the last point of a ladder the decisions reached (`RefitRule`:
each point is the previous one plus `max(min_new, ceil(growth x previous))`). So early refreshes
nearly all refit and later ones geometrically rarely, and the snapshot is a function of the
decisions alone, never of when refreshes ran: the same decisions give the same model whoever
refreshed when. A new snapshot differs from the stored one (`refit_reason`) when the taxonomy
changed, a decision in it was changed or withdrawn (a person reversed it), or the decisions
reached the next point of the ladder; otherwise the model is the same, and days whose texts
did not change keep their labels.

`labelling_fingerprint` names what a labels day was made with (prompt, taxonomy, local model,
the config fields that shape a label): two days labelled with the same fingerprint from the
same texts hold the same labels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from esk_pipeline.pipeline.labeler.agent import LabelerAgent
from esk_pipeline.pipeline.parts import digest
from esk_pipeline.pipeline.taxonomy import Taxonomy

__all__ = ["RefitRule", "TrainingSnapshot", "labelling_fingerprint", "refit_reason"]

# The config fields that change a label (the rest pace requests or place the cache).
_LABEL_SHAPING_FIELDS = (
    "model",
    "api_base",
    "output_mode",
    "fallback_model",
    "batch_size",
    "local_accept_threshold",
    "use_dynamic_fewshot",
    "fewshot_token_budget",
    "token_logprobs",
)


@dataclass(frozen=True)
class RefitRule:
    """The ladder of snapshot sizes: from 0, each point is the previous one plus
    `max(min_new, ceil(growth x previous))` (LABELER_REFIT_MIN_NEW, LABELER_REFIT_GROWTH)."""

    min_new: int
    growth: float

    def snapshot_size(self, decided: int) -> int:
        """The last point of the ladder at or below `decided`."""
        size = 0
        while (step := size + max(self.min_new, math.ceil(self.growth * size))) <= decided:
            size = step
        return size


@dataclass(frozen=True)
class TrainingSnapshot:
    """What the labelling model is fitted on: the taxonomy's fingerprint and verified
    (text, domain) pairs, distinct and sorted."""

    taxonomy: str
    verified: tuple[tuple[str, str], ...]
    # The distinct usable pairs decided when it was taken (the model knows the first ones).
    decided: int = field(default=0, compare=False)

    @classmethod
    def of(
        cls, taxonomy: Taxonomy, decided: Iterable[tuple[str, str]], rule: RefitRule
    ) -> TrainingSnapshot:
        """The snapshot of `decided` (in decision order) under `taxonomy` and `rule`: the
        first distinct pairs, as many as `rule.snapshot_size` of them all. Pairs whose domain
        the taxonomy does not hold, or whose text is empty, are left out (the model ignores
        them too)."""
        known = set(taxonomy.ids)
        pairs = dict.fromkeys(
            (str(t), str(d)) for t, d in decided if d in known and t and str(t).strip()
        )
        first = list(pairs)[: rule.snapshot_size(len(pairs))]
        return cls(taxonomy.fingerprint, tuple(sorted(first)), len(pairs))

    def to_json(self) -> bytes:
        value = {"taxonomy": self.taxonomy, "verified": [list(p) for p in self.verified]}
        return json.dumps(value, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> TrainingSnapshot:
        value = json.loads(data)
        return cls(value["taxonomy"], tuple((t, d) for t, d in value["verified"]))


def refit_reason(stored: TrainingSnapshot | None, current: TrainingSnapshot) -> str | None:
    """Why the model fitted on `current` is not the one fitted on `stored`; None: the same."""
    if stored is None:
        return "no snapshot stored yet"
    if stored.taxonomy != current.taxonomy:
        return "the taxonomy changed"
    if stored == current:
        return None
    now = set(current.verified)
    reversed_ = sum(pair not in now for pair in stored.verified)
    if reversed_:
        return f"{reversed_} verified label(s) in the snapshot changed or withdrawn"
    return f"the decisions reached {len(current.verified)} (from {len(stored.verified)})"


def labelling_fingerprint(agent: LabelerAgent) -> str:
    """What labels made by `agent` depend on besides their texts: the prompt version and the
    taxonomy (`agent.version`), the local model (its training data), the config fields that
    shape a label and any extra instructions."""
    shaping = agent.config.model_dump(mode="json", include=set(_LABEL_SHAPING_FIELDS))
    return digest(
        agent.version,
        agent.local_model.fingerprint,
        json.dumps(shaping, sort_keys=True),
        agent.extra_instructions,
    )[:16]
