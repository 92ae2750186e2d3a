"""The labeler: every cleaned text gets a taxonomy domain, a confidence and who decided.

    from esk_pipeline.pipeline.labeler import LabelerAgent, LabelerConfig

Where things live:
- `models`: `LabelerConfig`, `ClassificationResult`, `CascadeReport` (and the cached `Outcome`);
- `agent`: `LabelerAgent` (`classify_one`, `classify_dataframe`, `get_low_confidence_items`,
  `cascade_report`, `learn`);
- `_cascade`: one run through the tiers: local model first, then batched LLM requests,
  follow-ups, splitting, the per-text cache;
- `_prompts`: the system and user prompts, the answer's output type, `PROMPT_VERSION`;
- `_answers`: matching an answer back to texts, token-logprob confidence;
- `_fewshot`: the few-shot pool and its choice within a token budget;
- `frames`: `results_to_frame`, the label-row frame;
- `compat`: `label_dataframe_batched`, the contract's one-call labelling of a frame.
"""

from esk_pipeline.pipeline.labeler._prompts import PROMPT_VERSION
from esk_pipeline.pipeline.labeler.agent import LabelerAgent
from esk_pipeline.pipeline.labeler.compat import label_dataframe_batched
from esk_pipeline.pipeline.labeler.frames import results_to_frame
from esk_pipeline.pipeline.labeler.models import (
    LOCAL_MODEL_NAME,
    CascadeReport,
    ClassificationResult,
    LabelerConfig,
)

__all__ = [
    "LOCAL_MODEL_NAME",
    "PROMPT_VERSION",
    "CascadeReport",
    "ClassificationResult",
    "LabelerAgent",
    "LabelerConfig",
    "label_dataframe_batched",
    "results_to_frame",
]
