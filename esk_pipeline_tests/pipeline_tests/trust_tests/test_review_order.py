"""The review order: what a decision settles, not only how unsure the model is."""

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.review._order import base_priority, review_priority


def _candidates(
    texts: list[str], p_correct: float | list[float] = np.nan, confidence: float | list[float] = 0.5
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": texts,
            "domain": "water",
            "status": "labeled",
            "p_correct": p_correct,
            "confidence": confidence,
        }
    )


def _rank(priority: np.ndarray) -> list[int]:
    return list(np.argsort(-priority, kind="stable"))


CLUSTER = [f"нет горячей воды в доме номер {i} по улице ленина" for i in range(30)]
OUTLIERS = ["сосулька упала на машину", "где получить справку о составе семьи"]


def test_a_text_in_a_dense_neighbourhood_comes_before_an_equally_unsure_outlier() -> None:
    priority = review_priority(_candidates(OUTLIERS + CLUSTER), precision_target=0.95)
    order = _rank(priority)
    assert order.index(2) < order.index(0) and order.index(2) < order.index(1)


def test_a_batch_does_not_spend_itself_on_one_cluster() -> None:
    # The cluster's texts are denser, but once one is picked the rest look alike.
    texts = [*CLUSTER, "мусор не вывозят неделю во дворе", "мусорные баки переполнены во дворе"]
    head = _rank(review_priority(_candidates(texts), precision_target=0.95))[:4]
    assert {30, 31} & set(head)


def test_unsure_texts_and_those_just_short_of_the_target_beat_sure_ones() -> None:
    texts = [f"прорвало трубу в подвале дома {i}" for i in range(3)]
    p_correct = [0.99, 0.5, 0.9]  # sure, unsure, just short of 0.95
    priority = review_priority(_candidates(texts, p_correct), precision_target=0.95)
    assert priority[1] > priority[0] and priority[2] > priority[0]


def test_before_the_audit_the_models_own_confidence_does_not_order_the_texts() -> None:
    # No p_correct yet: a text its decision settles with 40 others comes first, however sure
    # or unsure the model claims to be of the lone ones.
    texts = ["прорвало трубу в подвале дома", "сломался лифт", "сломался лифт в подъезде"]
    candidates = _candidates(texts, confidence=[0.5, 0.9, 0.99])
    priority = review_priority(candidates, precision_target=0.95, group_sizes=pd.Series([1, 1, 40]))
    assert _rank(priority)[0] == 2
    alone = base_priority(candidates.iloc[:2], precision_target=0.95)
    assert alone[0] == alone[1]  # equally unmeasured, equally alone


def test_a_text_whose_decision_propagates_to_more_texts_comes_first() -> None:
    texts = ["сломался лифт в подъезде", "сломался лифт в нашем подъезде"]
    sizes = pd.Series([1, 40])
    priority = review_priority(_candidates(texts), precision_target=0.95, group_sizes=sizes)
    assert priority[1] > priority[0]


def test_no_candidates_and_texts_without_ngrams_are_fine() -> None:
    assert review_priority(_candidates([]), precision_target=0.95).shape == (0,)
    assert review_priority(_candidates(["", "!"]), precision_target=0.95).shape == (2,)
