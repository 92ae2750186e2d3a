"""The labels' model and stored days: the training snapshot a run fits the labelling model on
(kept beside the labels, `labels/labelling_model.json`), and which stored labels days a run can
keep as they are (`pipeline.labeler.snapshot` says when the model refits)."""

import contextlib
from dataclasses import dataclass

from dagster import AssetKey

from esk_pipeline.pipeline.labeler.snapshot import RefitRule, TrainingSnapshot, refit_reason
from esk_pipeline.pipeline.parts import write_whole
from esk_pipeline.resources.day_stream import KeptDay
from esk_pipeline.resources.io_manager import ParquetJsonIOManager

LABELS = AssetKey("labels")
SNAPSHOT_FILE = "labelling_model.json"
# In a labels day's file (`DataFrame.attrs`): what the day was made from, or that rows were
# left to label (a file with neither was written before labels recorded their model).
MADE_FROM = "esk/made_from"
LEFT_TO_LABEL = {"left_to_label": "deferred, failed or fallback-answered rows"}
FORCED = "forced relabel"


@dataclass(frozen=True)
class Refit:
    """Why this run fitted the labelling model anew (None: it kept the stored snapshot), and
    how many verified labels the model does not know yet."""

    reason: str | None
    waiting: int


def snapshot_refit(
    current: TrainingSnapshot, files: ParquetJsonIOManager | None, rule: RefitRule, relabel: bool
) -> tuple[TrainingSnapshot, Refit]:
    """The snapshot to fit the labelling model on: the stored one, unless `refit_reason` (or
    `relabel`) says to take `current`, which is then stored before any day is labelled (a run
    that fails half way leaves days of both models, and the next run relabels the old ones)."""
    if files is None:
        return current, Refit("no place to keep a snapshot: fitted on every decision", 0)
    path = files.state_file(LABELS, SNAPSHOT_FILE)
    stored = None
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        stored = TrainingSnapshot.from_json(path.read_bytes())
    reason = FORCED if relabel else refit_reason(stored, current, rule)
    if reason is None and stored is not None:
        return stored, Refit(None, len(set(current.verified) - set(stored.verified)))
    data = current.to_json()
    write_whole(path, lambda f: f.write(data))
    return current, Refit(reason, 0)


@dataclass
class StoredDays:
    """Which stored labels days can be kept: those made from the same cleaned texts file by
    the same labelling model, with nothing left to label (no deferred or failed row, no
    fallback model's answer)."""

    files: ParquetJsonIOManager
    made_from: dict[str, dict[str, str]]
    refit: Refit

    def kept(self, day: str) -> tuple[KeptDay | None, str]:
        """The day kept as stored, or None and why it is labelled again."""
        wanted = self.made_from[day]
        if self.refit.reason == FORCED:
            return None, "relabelled: forced"
        if not wanted["cleaned_texts"]:
            return None, "labelled: no cleaned texts"
        stored = self.files.stored_day(LABELS, day)
        if stored is None:
            return None, "labelled: a new day"
        rows, attrs = stored
        made = attrs.get(MADE_FROM) or {}
        if made == wanted:
            return KeptDay(rows), f"reused (model {wanted['labelling_model']})"
        if made == LEFT_TO_LABEL:
            return None, f"relabelled: it had {LEFT_TO_LABEL['left_to_label']}"
        if not made:
            return None, "relabelled: made before labels days recorded their labelling model"
        if made.get("cleaned_texts") != wanted["cleaned_texts"]:
            return None, "relabelled: its cleaned texts changed"
        why = f"model refit ({self.refit.reason})" if self.refit.reason else "model changed"
        return None, f"relabelled: {why}"
