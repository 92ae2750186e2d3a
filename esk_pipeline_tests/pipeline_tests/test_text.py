import pyarrow as pa
import pytest

from esk_pipeline.pipeline.text import (
    identity_key,
    identity_key_series,
    identity_keys,
    model_form,
    model_forms,
)

# ё/е, case, emoji, PII placeholders, punctuation, digits, every kind of whitespace.
CORPUS = [
    "  Счётчик   ЁЛКА\n",
    "Передать показания счётчика!!!",
    "передать показания счетчика",
    "ПЕРЕДАТЬ, показания — счетчика?",
    "Не работает лифт 😡😡 подъезд №3",
    "Мой телефон <PHONE>, почта <EMAIL>",
    "мой_телефон  <phone> почта\t<EMAIL>",
    "карта <CARD> снилс <SNILS> паспорт <PASSPORT>",
    "???",
    "!!! ...",
    "",
    "   ",
    "a\u00a0b\u2003c\u3000d\x1ce\x85f\u2028g\vh",
    "½ ставки, 3² метра, x²",
    "café naïve Ёж ёж",
    "йод й",  # decomposed й (и + combining breve)
    "Hello, World! 123",
    "🙂",
]


@pytest.mark.parametrize("text", CORPUS)
def test_arrow_and_python_forms_agree(text: str) -> None:
    column = pa.array([text], type=pa.large_string())
    assert model_forms(column).to_pylist() == [model_form(text)]
    assert identity_keys(column).to_pylist() == [identity_key(text)]


def test_forms_agree_on_a_whole_column_with_chunks() -> None:
    chunked = pa.chunked_array([CORPUS[:7], CORPUS[7:]], type=pa.large_string())
    assert model_forms(chunked).to_pylist() == [model_form(t) for t in CORPUS]
    assert identity_keys(chunked).to_pylist() == [identity_key(t) for t in CORPUS]


def test_model_form_folds_case_yo_and_whitespace_but_keeps_punctuation() -> None:
    assert model_form("  Счётчик   ЁЛКА?\n") == "счетчик елка?"


def test_identity_key_equates_near_duplicates() -> None:
    variants = [
        "Передать показания счётчика!!!",
        "передать  показания, счетчика",
        "ПЕРЕДАТЬ ПОКАЗАНИЯ СЧЕТЧИКА?",
    ]
    assert len({identity_key(v) for v in variants}) == 1
    assert identity_key("передать показания счетчика газа") != identity_key(variants[0])


def test_texts_without_letters_or_digits_are_their_own_key() -> None:
    assert identity_key("???") == "???"
    assert identity_key("???") != identity_key("!!!")


def test_placeholders_survive_as_words() -> None:
    assert identity_key("звоните <PHONE>!") == "звоните phone"


def test_series_form_keeps_the_index_and_treats_missing_as_empty() -> None:
    import pandas as pd

    series = pd.Series(["Счётчик!", None, "счетчик"], index=[5, 7, 9])
    keys = identity_key_series(series)
    assert list(keys.index) == [5, 7, 9]
    assert keys.tolist() == ["счетчик", "", "счетчик"]
