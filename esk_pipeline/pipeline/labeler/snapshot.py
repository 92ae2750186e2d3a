"""The labelling model's training snapshot, and when a refresh must take a new one.

The labeler's local model (and the few-shot pool) learns from the human-verified labels. If it
were fitted on every decision, every dataset refresh would change the model and relabel every
day of history, although the decisions themselves reach the dataset through `trusted_labels`
(a decision overrides the machine label) whatever the model. So the model is fitted on a
snapshot: the verified (text, domain) pairs and the taxonomy's fingerprint it was taken with.
A refresh takes a new snapshot only when it must (`refit_reason`): the taxonomy changed, a
verified label in the snapshot was changed or withdrawn (a person reversed it), or the verified
labels grew by at least `RefitRule.threshold` new pairs since; otherwise the labeler is built
from the stored snapshot, the model is the same, and days whose texts did not change keep their
labels. The threshold grows with the snapshot, so early refreshes nearly all refit and later
ones geometrically rarely. A decision confirmed again (a doubt's second opinion) leaves its pair
as it was, so it refits nothing. The snapshot is state: which decisions it holds depends on when
refreshes crossed the threshold, not on the decisions alone (taking it as a function of the
decisions alone would need a decision order that neither a confirmed doubt nor a correction
settled late moves).

`labelling_fingerprint` names what a labels day was made with (prompt, taxonomy, local model,
the config fields that shape a label): two days labelled with the same fingerprint from the
same texts hold the same labels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from esk_pipeline.pipeline.labeler.agent import LabelerAgent
from esk_pipeline.pipeline.labeler.frames import LABEL_COLUMNS
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
class TrainingSnapshot:
    """What the labelling model is fitted on: the taxonomy's fingerprint and the distinct
    verified (text, domain) pairs, sorted (the same decisions give the same snapshot whatever
    their order)."""

    taxonomy: str
    verified: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, taxonomy: Taxonomy, verified: Iterable[tuple[str, str]]) -> TrainingSnapshot:
        """The snapshot of `verified` under `taxonomy`: pairs whose domain the taxonomy does
        not hold, or whose text is empty, are left out (the model ignores them too)."""
        known = set(taxonomy.ids)
        pairs = {(str(t), str(d)) for t, d in verified if d in known and t and str(t).strip()}
        return cls(taxonomy.fingerprint, tuple(sorted(pairs)))

    def to_json(self) -> bytes:
        value = {"taxonomy": self.taxonomy, "verified": [list(p) for p in self.verified]}
        return json.dumps(value, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> TrainingSnapshot:
        value = json.loads(data)
        return cls(value["taxonomy"], tuple((t, d) for t, d in value["verified"]))


@dataclass(frozen=True)
class RefitRule:
    """Refit once at least `max(min_new, ceil(growth x snapshot size))` verified pairs are new
    since the snapshot (LABELER_REFIT_MIN_NEW, LABELER_REFIT_GROWTH)."""

    min_new: int
    growth: float

    def threshold(self, snapshot_size: int) -> int:
        return max(self.min_new, math.ceil(self.growth * snapshot_size))


def refit_reason(
    stored: TrainingSnapshot | None, current: TrainingSnapshot, rule: RefitRule
) -> str | None:
    """Why the model must be fitted on `current` instead of `stored`; None: keep `stored`."""
    if stored is None:
        return "no snapshot stored yet"
    if stored.taxonomy != current.taxonomy:
        return "the taxonomy changed"
    now = set(current.verified)
    reversed_ = sum(pair not in now for pair in stored.verified)
    if reversed_:
        return f"{reversed_} verified label(s) in the snapshot changed or withdrawn"
    new = len(now) - len(stored.verified)
    needed = rule.threshold(len(stored.verified))
    if new >= needed:
        return f"{new} new verified labels (refit at {needed})"
    return None


def labelling_fingerprint(agent: LabelerAgent) -> str:
    """What labels made by `agent` depend on besides their texts: the prompt version and the
    taxonomy (`agent.version`), the local model (its training data), the config fields that
    shape a label, any extra instructions, and the label row's columns (a day stored with
    others is labelled again, not kept in an old shape)."""
    shaping = agent.config.model_dump(mode="json", include=set(_LABEL_SHAPING_FIELDS))
    return digest(
        agent.version,
        agent.local_model.fingerprint,
        json.dumps(shaping, sort_keys=True),
        agent.extra_instructions,
        ",".join(LABEL_COLUMNS),
    )[:16]
