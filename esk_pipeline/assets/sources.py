"""How the downstream stages see labels: model labels of every day plus the human decisions."""

import pandas as pd

HUMAN_CONFIDENCE = 1.0


def labelled_and_verified(
    labels: dict[str, pd.DataFrame], verified_labels: pd.DataFrame, *, human_wins: bool = True
) -> pd.DataFrame:
    """Label rows of all days and verified rows as label rows (label_source "reviewer:<id>").

    With `human_wins`, a row a person decided appears once, with the person's label; without,
    both are kept and the consumer resolves them (the DataWriter does, and counts them).
    The same text on two days is one row id: it is kept once.
    """
    model = pd.concat(labels.values(), ignore_index=True) if labels else pd.DataFrame()
    if len(model):
        model = model.drop_duplicates("row_id", keep="last")
    human = verified_labels.assign(
        confidence=HUMAN_CONFIDENCE, status="labeled", tier="review", is_synthetic=False
    )
    if human_wins and len(model):
        model = model[~model["row_id"].isin(human["row_id"])]
    return pd.concat([model, human], ignore_index=True)
