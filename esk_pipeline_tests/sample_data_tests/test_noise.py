"""The mess, each kind measured from the outside at its rate, and the planted-PII ground truth."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import (
    MESS_RATES,
    generate_logs,
)
from esk_pipeline_tests.sample_data_tests.support import (
    CARD,
    CYRILLIC,
    EMAIL,
    EMOJI,
    LATIN_TO_CYRILLIC,
    LETTER,
    N_ROWS,
    PHONE,
    RU_ALPHABET,
    STRAY_WHITESPACE,
    WORD,
    assert_rate,
    share,
)


def test_exact_duplicates_are_the_same_user_resubmitting(logs: pd.DataFrame) -> None:
    substantive = logs[logs["text"].str.strip().str.len() >= 10]
    repeats = substantive.duplicated(subset=["user_id", "text"]).sum()
    assert_rate(repeats / len(logs), MESS_RATES["exact_duplicate"], 0.9, 1.3)
    # most resubmissions keep the session and come within half an hour
    group = substantive[substantive.duplicated(subset=["user_id", "text"], keep=False)]
    spans = group.groupby(["user_id", "text"])["ts"].agg(lambda ts: ts.max() - ts.min())
    assert share(spans <= pd.Timedelta(minutes=30)) > 0.8


def test_near_duplicates_differ_only_in_case_punctuation_or_space(logs: pd.DataFrame) -> None:
    substantive = logs[logs["text"].str.strip().str.len() >= 10]
    key = substantive["text"].str.lower().str.replace(r"[\W_]+", "", regex=True)
    variants = substantive.assign(key=key).groupby(["user_id", "key"])["text"].nunique()
    assert_rate(int((variants - 1).sum()) / len(logs), MESS_RATES["near_duplicate"], 0.8, 1.3)


def test_empty_and_very_short_texts(logs: pd.DataFrame) -> None:
    stripped = logs["text"].str.strip()
    assert_rate(share(stripped == ""), MESS_RATES["empty"])
    assert (logs["text"] == "").any() and (logs["text"].str.len() > 0).any()
    assert_rate(share(stripped.str.len().between(1, 12)), MESS_RATES["very_short"], 0.7, 1.6)
    assert {"?", "ок"} <= set(stripped)


def test_a_few_very_long_multi_paragraph_texts(logs: pd.DataFrame) -> None:
    long = logs.loc[logs["text"].str.len() > 1000, "text"]
    assert 0.4 * MESS_RATES["long"] * N_ROWS <= len(long) <= 2.5 * MESS_RATES["long"] * N_ROWS
    assert long.str.contains("\n\n").all()
    assert long.nunique() >= 0.7 * len(long)  # resubmissions aside, each is its own story


def test_personal_data_appears(logs: pd.DataFrame) -> None:
    text = logs["text"]
    assert_rate(share(text.str.contains(PHONE)), MESS_RATES["phone"], 0.8, 1.4)
    assert_rate(share(text.str.contains(EMAIL)), MESS_RATES["email"], 0.5, 1.5)
    assert text.str.contains(CARD).sum() >= 10
    assert text.str.contains(r"С уважением, [А-Я][а-яё]+ [А-Я]", case=False).sum() >= 30
    assert text.str.contains(r"(?:ул\.|д\.|кв\.?) ?\d", regex=True).sum() > 0.05 * len(logs)


def test_emoji_caps_and_stray_whitespace(typed: pd.DataFrame) -> None:
    text = typed["text"]
    assert_rate(share(text.str.contains(EMOJI)), MESS_RATES["emoji"], 0.8, 1.3)
    letters = text.str.count(LETTER)
    shouting = (letters >= 10) & (text.str.upper() == text)
    assert_rate(share(shouting), MESS_RATES["caps"], 0.7, 1.5)
    not_long = text[text.str.len() <= 1000]
    assert_rate(
        share(not_long.str.contains(STRAY_WHITESPACE) & (not_long.str.strip() != "")),
        MESS_RATES["whitespace"],
        0.8,
        1.3,
    )


def test_greetings_and_sign_offs(typed: pd.DataFrame) -> None:
    lowered = typed["text"].str.lower()
    greets = lowered.str.contains(r"^\W*(?:здравствуйте|добрый|доброе|привет|здрасьте|уважаемые)")
    assert share(greets) > 0.5 * MESS_RATES["greeting"]
    assert share(lowered.str.contains("заранее спасибо|с уважением|жду ответа")) > 0.05


def test_transcripts_read_like_speech(logs: pd.DataFrame) -> None:
    transcripts = logs.loc[
        (logs["channel"] == "phone_transcript") & (logs["text"].str.len() > 20), "text"
    ]
    assert len(transcripts) > 300
    assert share(transcripts.str.contains(r"[.!?«»]")) < 0.1
    assert share(transcripts.str.contains(EMOJI)) == 0
    assert share(transcripts.str.contains(r"\b(?:ну|алло|короче|слушайте|значит)\b")) > 0.2


def test_follow_ups_continue_a_session_in_its_domain(logs: pd.DataFrame) -> None:
    key = logs["text"].str.lower().str.replace(r"[\W_]+", "", regex=True)
    per_session = logs.assign(key=key).groupby("session_id")
    follow_ups = int((per_session["key"].nunique() - 1).sum())
    assert_rate(follow_ups / len(logs), MESS_RATES["follow_up"], 0.8, 1.3)
    assert per_session["true_domain"].nunique().max() == 1
    assert per_session["user_id"].nunique().max() == 1


def _edits(word: str) -> set[str]:
    """Words one keyboard slip away from `word` (drop, transpose, insert, substitute)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return (
        {a + b[1:] for a, b in splits if b}
        | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        | {a + c + b for a, b in splits for c in RU_ALPHABET}
        | {a + c + b[1:] for a, b in splits if b for c in RU_ALPHABET}
    )


def test_typos_are_common_but_not_everywhere(logs: pd.DataFrame) -> None:
    """A typo shows as a rare word one keyboard slip away from a common word."""
    lowered = logs["text"].str.lower().str.replace("ё", "е")
    words_per_row = [WORD.findall(t) for t in lowered]
    counts = Counter(w for words in words_per_row for w in words)
    common = {w for w, c in counts.items() if c >= 20}
    misspelt = {w for w, c in counts.items() if c <= 2 and len(w) >= 4 and _edits(w) & common}
    rows_with_typo = sum(any(w in misspelt for w in words) for words in words_per_row)
    assert_rate(rows_with_typo / len(logs), MESS_RATES["typo"], 0.6, 1.3)


def test_wrong_keyboard_layout_is_rare(typed: pd.DataFrame) -> None:
    russian_words = set(WORD.findall(" ".join(typed["text"].str.lower())))
    latin_words = typed["text"].str.lower().str.findall(r"[a-z\[\];',.]{3,}")
    slipped = latin_words.map(
        lambda words: any(w.translate(LATIN_TO_CYRILLIC) in russian_words for w in words)
    )
    assert_rate(share(slipped), MESS_RATES["wrong_layout"], 0.5, 2.0)


def test_a_few_spam_and_non_cyrillic_lines(taxonomy: Taxonomy, logs: pd.DataFrame) -> None:
    has_letters = logs["text"].str.contains(LETTER)
    non_cyrillic = has_letters & ~logs["text"].str.contains(CYRILLIC)
    assert 0.001 < share(non_cyrillic) < 0.03
    # off-topic rows are labelled out of scope, not as the domain they were drawn for
    off_topic = logs.loc[non_cyrillic, "true_domain"] == taxonomy.other_id
    assert off_topic.mean() > 0.6


def test_planted_pii_lists_what_each_text_holds(taxonomy) -> None:
    logs = generate_logs(taxonomy, n_rows=2000, seed=5, planted_pii=True)
    assert logs["text"].tolist() == generate_logs(taxonomy, n_rows=2000, seed=5)["text"].tolist()
    kinds = {kind for planted in logs["planted_pii"] for kind, _ in planted}
    assert {"name", "phone", "email", "account", "flat"} <= kinds
    for text, planted in zip(logs["text"], logs["planted_pii"], strict=True):
        for kind, value in planted:
            if kind in ("phone", "card", "snils", "passport", "oms", "account"):
                digits = re.sub(r"\D", "", value)
                assert digits[-4:] in re.sub(r"\D", "", text), (kind, value, text)
    styles = [v for p in logs["planted_pii"] for k, v in p if k == "email"]
    assert any(" собака " in v for v in styles) and any("(at)" in v for v in styles)
