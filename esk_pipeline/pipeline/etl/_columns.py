"""Finding a raw table's text, timestamp and user columns by their names, in Russian or English.

Names are compared after casefolding, ё->е and collapsing spaces/underscores/dashes/dots, so
"Текст_обращения" and "текст обращения" match. A configured `text_column` replaces the search
for the text column; a table with columns but no text column is an `ETLError` listing them.
Every column not found here goes to the cleaned rows' `metadata`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from esk_pipeline.pipeline.etl.models import ETLError

# Earlier names win when a file has several candidates.
_TEXT_NAMES = (
    "text", "текст", "текст обращения", "текст сообщения", "текст запроса", "message",
    "сообщение", "обращение", "query", "запрос", "question", "вопрос", "request", "msg",
    "content", "body", "utterance", "содержание", "description", "описание", "comment",
    "комментарий",
)  # fmt: skip
_TS_NAMES = (
    "ts", "timestamp", "datetime", "date time", "created at", "created", "event time", "date",
    "time", "дата и время", "дата время", "дата обращения", "дата создания", "дата", "время",
    "время обращения",
)  # fmt: skip
_USER_NAMES = (
    "user id", "userid", "uid", "user", "client id", "customer id", "client", "customer",
    "ид пользователя", "id пользователя", "пользователь", "ид клиента", "id клиента", "клиент",
    "абонент",
)  # fmt: skip


@dataclass(frozen=True)
class FoundColumns:
    """Positions of the discovered columns in the raw frame (None when absent)."""

    text: int | None
    ts: int | None
    user_id: int | None


def find_columns(raw: pd.DataFrame, text_column: str | None, source: str) -> FoundColumns:
    """The text, timestamp and user columns' positions, found by name; text is required
    (unless the table has no columns at all)."""
    labels = list(raw.columns)
    by_key: dict[str, int] = {}
    for position, label in enumerate(labels):
        by_key.setdefault(_column_key(str(label)), position)  # the first of clashing names
    if text_column is not None:
        text = by_key.get(_column_key(text_column))
        wanted = f"the configured text column {text_column!r}"
    else:
        text = _first_present(by_key, _TEXT_NAMES)
        wanted = "text column (text, message, Текст обращения, Сообщение, Вопрос, ...)"
    if text is None and labels:
        raise ETLError(
            f"{source}: no {wanted} among the columns {[str(c) for c in labels]}; "
            "rename it or set ETL_TEXT_COLUMN"
        )
    return FoundColumns(
        text=text,
        ts=_first_present(by_key, _TS_NAMES, exclude=text),
        user_id=_first_present(by_key, _USER_NAMES, exclude=text),
    )


def _column_key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", " ", name.casefold().replace("ё", "е")).strip()


def _first_present(
    by_key: dict[str, int], wanted: tuple[str, ...], exclude: int | None = None
) -> int | None:
    """The position of the first wanted name present (None when none is)."""
    for key in wanted:
        position = by_key.get(key)
        if position is not None and position != exclude:
            return position
    return None
