"""How the downstream stages see labels: model labels of every day plus the human decisions."""

import pandas as pd

HUMAN_CONFIDENCE = 1.0


def labelled_and_verified(
    labels: dict[str, pd.DataFrame], verified_labels: pd.DataFrame
) -> pd.DataFrame:
    """One label row per row id: a person's decision where there is one (label_source
    "reviewer:<id>"), else the model's. The same text on two days is one row id, kept once."""
    model = pd.concat(labels.values(), ignore_index=True) if labels else pd.DataFrame()
    if len(model):
        model = model.drop_duplicates("row_id", keep="last")
        model = model[~model["row_id"].isin(verified_labels["row_id"])]
    human = verified_labels.assign(
        confidence=HUMAN_CONFIDENCE, status="labeled", tier="review", is_synthetic=False
    )
    return pd.concat([model, human], ignore_index=True)
