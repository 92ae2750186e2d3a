"""Classification over HTTP through the app's labeler (the offline local model by default).

The labeler is built once per app, on the first request (training the local model takes a
moment), and shared by every request after that. Texts are PII-masked first, as the ETL masks
the logs (`ETL_MASK_PII`): the labeler, and an LLM endpoint behind it, sees what it sees in the
pipeline, and the model is asked about the text form it learned from.
"""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter

from esk_pipeline.api.auth import MaintainerId
from esk_pipeline.api.deps import LabelerDep, ServicesDep
from esk_pipeline.api.errors import error_responses
from esk_pipeline.api.limits import BodyLimit
from esk_pipeline.api.schemas import (
    MAX_CLASSIFY_BATCH,
    MAX_TEXT_CHARS,
    ClassifyBatchIn,
    ClassifyBatchOut,
    ClassifyIn,
)
from esk_pipeline.pipeline.labeler import ClassificationResult
from esk_pipeline.pipeline.pii import mask_texts

router = APIRouter(prefix="/api/classify", tags=["classify"], responses=error_responses(503))

BATCH_PATH = "/api/classify/batch"
# JSON may escape a character as \uXXXX (Python's json and requests do for all non-ASCII text),
# 12 bytes for one beyond the BMP: the biggest batch the schema allows fits either way.
_JSON_BYTES_PER_CHAR = 12


def batch_body_limit() -> BodyLimit:
    """The batch route's body limit: the biggest batch the schema allows, read only for a token
    that may classify."""
    max_bytes = MAX_CLASSIFY_BATCH * (MAX_TEXT_CHARS * _JSON_BYTES_PER_CHAR + 16) + 1024
    detail = (
        f"the request body is larger than the limit of {max_bytes // (1024 * 1024)} MB: send "
        f"at most {MAX_CLASSIFY_BATCH} texts of at most {MAX_TEXT_CHARS} characters"
    )
    return BodyLimit(max_bytes, detail, "maintainer")


@router.post("", response_model=ClassificationResult, summary="Classify one text")
async def classify_one(
    body: ClassifyIn, reviewer_id: MaintainerId, labeler: LabelerDep, services: ServicesDep
) -> ClassificationResult:
    [text] = _as_the_etl_masks(services, [body.text])
    return await labeler.classify_one(text)


@router.post(
    "/batch",
    response_model=ClassifyBatchOut,
    summary="Classify a list of texts, in order (bounded; bigger jobs belong to the pipeline)",
)
async def classify_batch(
    body: ClassifyBatchIn, reviewer_id: MaintainerId, labeler: LabelerDep, services: ServicesDep
) -> ClassifyBatchOut:
    texts = _as_the_etl_masks(services, body.texts)
    results = await labeler.classify_dataframe(pd.DataFrame({"text": texts}))
    return ClassifyBatchOut(results=results)


def _as_the_etl_masks(services: ServicesDep, texts: list[str]) -> list[str]:
    if not services.etl_config().mask_pii:
        return texts
    return mask_texts(texts)
