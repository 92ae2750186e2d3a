"""The sample-log generator: deterministic, imbalanced, daytime-heavy, and messy at known rates.

The mess is measured from the outside (regexes, duplicate groups, edit distance to common
words), not read back from the generator, so a regression in any kind of damage shows up here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from esk_pipeline.pipeline.taxonomy import Domain, Taxonomy
from esk_pipeline.sample_data import (
    CHANNELS,
    MESS_RATES,
    REGIONS,
    SAMPLE_DOMAIN_WEIGHTS,
    domain_weights,
    generate_logs,
)

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"
N_ROWS = 6000

PHONE = re.compile(r"(?<!\d)(?:\+7|8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)")
# Also the dodging styles: "собака" or "(at)" for the @, spaces around it, a space for the dot.
EMAIL = re.compile(r"[\w.+-]+(?: ?@ ?| собака |\(at\))[\w-]+[. ][a-z]{2,}")
CARD = re.compile(r"(?<!\d)\d{4} \d{4} \d{4} \d{4}(?!\d)")
EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")
STRAY_WHITESPACE = re.compile(r"^\s|\s$| {2,}|\t|\r")
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
LETTER = re.compile(r"[^\W\d_]")
WORD = re.compile(r"[а-яё]+")
RU_ALPHABET = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
# The two keyboard layouts, key by key (an independent copy: the test must not trust the module).
LATIN_KEYS = "qwertyuiop[]asdfghjkl;'zxcvbnm,."
CYRILLIC_KEYS = "йцукенгшщзхъфывапролджэячсмитьбю"
LATIN_TO_CYRILLIC = str.maketrans(LATIN_KEYS, CYRILLIC_KEYS)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load(TAXONOMY_PATH)


@pytest.fixture(scope="module")
def logs(taxonomy: Taxonomy) -> pd.DataFrame:
    return generate_logs(taxonomy, n_rows=N_ROWS)


@pytest.fixture(scope="module")
def typed(logs: pd.DataFrame) -> pd.DataFrame:
    """Rows typed by a person (speech transcripts never have emoji, CAPS or layout slips)."""
    return logs[logs["channel"] != "phone_transcript"]


def assert_rate(measured: float, expected: float, low: float = 0.6, high: float = 1.5) -> None:
    assert low * expected <= measured <= high * expected, (measured, expected)


def share(mask: pd.Series) -> float:
    return float(mask.mean())


# ------------------------------------------------------------------------------------------
# Determinism, shape, dtypes
# ------------------------------------------------------------------------------------------


def test_same_arguments_give_the_same_frame(taxonomy: Taxonomy, logs: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_logs(taxonomy, n_rows=N_ROWS), logs)


def test_another_seed_gives_other_texts(taxonomy: Taxonomy, logs: pd.DataFrame) -> None:
    other = generate_logs(taxonomy, n_rows=N_ROWS, seed=7)
    assert len(other) == len(logs)
    assert (other["text"] != logs["text"]).mean() > 0.9
    assert (other["ts"] != logs["ts"]).mean() > 0.9


def test_result_does_not_depend_on_hash_randomisation(logs: pd.DataFrame) -> None:
    script = (
        "import pandas as pd\n"
        "from esk_pipeline.pipeline.taxonomy import Taxonomy\n"
        "from esk_pipeline.sample_data import generate_logs\n"
        f"frame = generate_logs(Taxonomy.load({str(TAXONOMY_PATH)!r}), n_rows={N_ROWS})\n"
        "print(int(pd.util.hash_pandas_object(frame, index=True).sum()))\n"
    )
    for hash_seed in ("1", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
            cwd=TAXONOMY_PATH.parents[1],
        )
        assert int(done.stdout) == int(pd.util.hash_pandas_object(logs, index=True).sum())


def test_columns_and_dtypes(logs: pd.DataFrame) -> None:
    assert list(logs.columns) == [
        "text",
        "ts",
        "user_id",
        "channel",
        "region",
        "session_id",
        "true_domain",
    ]
    assert len(logs) == N_ROWS
    assert str(logs["ts"].dtype) == "datetime64[ns, UTC]"
    for column in ("text", "user_id", "channel", "region", "session_id", "true_domain"):
        assert logs[column].map(type).eq(str).all(), column
    assert logs["user_id"].str.fullmatch(r"u\d{6}").all()
    assert set(logs["channel"]) == set(CHANNELS)
    assert set(logs["region"]) <= set(REGIONS)
    assert logs["region"].nunique() >= 5


def test_some_users_write_several_times(logs: pd.DataFrame) -> None:
    per_user = logs["user_id"].value_counts()
    assert per_user.max() >= 5
    assert 0.2 < share(per_user > 1) < 0.8
    # a user's region does not change between messages
    assert logs.groupby("user_id")["region"].nunique().max() == 1


def test_empty_and_tiny_requests(taxonomy: Taxonomy) -> None:
    empty = generate_logs(taxonomy, n_rows=0)
    assert list(empty.columns) == list(generate_logs(taxonomy, n_rows=1).columns)
    assert str(empty["ts"].dtype) == "datetime64[ns, UTC]"
    assert len(generate_logs(taxonomy, n_rows=1)) == 1
    with pytest.raises(ValueError):
        generate_logs(taxonomy, n_rows=-1)
    with pytest.raises(ValueError):
        generate_logs(taxonomy, days=0)


# ------------------------------------------------------------------------------------------
# Domains
# ------------------------------------------------------------------------------------------


def test_every_domain_is_present_and_no_other(taxonomy: Taxonomy, logs: pd.DataFrame) -> None:
    assert set(logs["true_domain"]) == set(taxonomy.ids)


def test_domains_are_imbalanced_as_a_contact_centre_sees_them(logs: pd.DataFrame) -> None:
    counts = logs["true_domain"].value_counts()
    assert counts.max() >= 5 * counts.min()
    for frequent in ("housing_utilities", "meter_readings", "payments"):
        for rare in ("education", "waste", "social_benefits"):
            assert counts[frequent] > 3 * counts[rare], (frequent, rare)
    assert 0.02 < counts["other"] / len(logs) < 0.10


def test_domain_weights_cover_the_taxonomy_and_sum_to_one(taxonomy: Taxonomy) -> None:
    weights = domain_weights(taxonomy)
    assert list(weights) == taxonomy.ids
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["housing_utilities"] / weights["waste"] == pytest.approx(
        SAMPLE_DOMAIN_WEIGHTS["housing_utilities"] / SAMPLE_DOMAIN_WEIGHTS["waste"]
    )


def test_texts_are_varied_not_repetitive(logs: pd.DataFrame) -> None:
    ordinary = logs[logs["text"].str.strip().str.len() >= 10]
    assert ordinary["text"].nunique() > 0.85 * len(ordinary)
    assert ordinary["text"].value_counts().iloc[0] < 0.01 * len(ordinary)
    for domain in ("housing_utilities", "meter_readings", "payments"):
        texts = ordinary.loc[ordinary["true_domain"] == domain, "text"]
        assert texts.nunique() > 0.85 * len(texts), domain


def test_neighbouring_domains_share_vocabulary(logs: pd.DataFrame) -> None:
    """A classifier must not be able to key on one word: "вод", "квитанц", "счётчик/счетчик"
    each appear in several domains."""
    lowered = logs["text"].str.lower()
    for stem in ("вод", "квитанц", "сч[её]тчик", "подъезд"):
        domains = logs.loc[lowered.str.contains(stem), "true_domain"].value_counts()
        assert (domains >= 5).sum() >= 3, (stem, domains.to_dict())


def test_a_plain_classifier_learns_it_but_cannot_ace_it(
    taxonomy: Taxonomy, logs: pd.DataFrame
) -> None:
    """Borderline wordings shared by two domains, multi-topic messages and contentless
    follow-ups keep a bag-of-words model well below 100% (as on real logs), while the domain
    signal is strong enough to learn. A template-only set scores ~99.5% here."""
    train = generate_logs(taxonomy, n_rows=N_ROWS, seed=1)
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    model = LinearSVC(C=0.5).fit(vectorizer.fit_transform(train["text"]), train["true_domain"])
    predicted = model.predict(vectorizer.transform(logs["text"]))
    accuracy = float((predicted == logs["true_domain"]).mean())
    assert 0.75 < accuracy < 0.95, accuracy


def test_some_wordings_honestly_carry_two_labels(logs: pd.DataFrame) -> None:
    key = logs["text"].str.lower().str.replace(r"[\W_]+", "", regex=True)
    labels_per_wording = logs.assign(key=key).groupby("key")["true_domain"].nunique()
    substantive = labels_per_wording[labels_per_wording.index.str.len() >= 25]
    assert (substantive > 1).sum() >= 5


def test_works_with_a_small_english_taxonomy_with_examples_only() -> None:
    examples = {
        "billing": ["I was charged twice", "refund my last payment", "invoice is wrong"],
        "delivery": ["my parcel is late", "courier never came", "wrong address on the label"],
        "account": ["cannot log in", "reset my password", "delete my account"],
    }
    taxonomy = Taxonomy(
        domains=[Domain(id=i, name=i.title(), examples=e) for i, e in examples.items()]
    )
    logs = generate_logs(taxonomy, n_rows=1500, seed=3)
    counts = logs["true_domain"].value_counts()
    assert set(counts.index) == set(examples)
    assert counts["billing"] > counts["delivery"] > counts["account"]
    lowered = logs["text"].str.lower()
    carries_example = [
        any(e.lower() in text for e in examples[domain])
        for text, domain in zip(lowered, logs["true_domain"], strict=True)
    ]
    assert sum(carries_example) > 0.7 * len(logs)
    assert share(lowered.str.contains(CYRILLIC)) < 0.03  # only the odd spam line
    assert share(lowered.str.contains(r"\b(?:hello|hi|thank you|regards)\b")) > 0.1


def test_a_domain_without_examples_is_built_from_its_name_and_description() -> None:
    taxonomy = Taxonomy(
        domains=[
            Domain(id="parking", name="Parking", description="Resident permits, tow trucks"),
            Domain(id="weather", name="天气"),
        ]
    )
    logs = generate_logs(taxonomy, n_rows=400, seed=1)
    assert set(logs["true_domain"]) == {"parking", "weather"}
    parking = logs.loc[logs["true_domain"] == "parking", "text"].str.lower()
    assert share(parking.str.contains("permit|tow truck")) > 0.6
    assert share(logs.loc[logs["true_domain"] == "weather", "text"].str.contains("天气")) > 0.6


# ------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------


def test_timestamps_cover_every_day_in_range_and_are_sorted(logs: pd.DataFrame) -> None:
    start = pd.Timestamp("2026-11-01", tz="UTC")
    assert logs["ts"].min() >= start
    assert logs["ts"].max() < start + pd.Timedelta(days=7)
    assert logs["ts"].dt.date.nunique() == 7
    assert logs["ts"].is_monotonic_increasing


def test_custom_dates_are_respected(taxonomy: Taxonomy) -> None:
    logs = generate_logs(taxonomy, n_rows=500, start_date=date(2027, 2, 27), days=3)
    days = sorted(set(logs["ts"].dt.strftime("%Y-%m-%d")))
    assert days == ["2027-02-27", "2027-02-28", "2027-03-01"]


def test_daytime_carries_most_messages(logs: pd.DataFrame) -> None:
    moscow_hour = logs["ts"].dt.tz_convert("Europe/Moscow").dt.hour
    assert share(moscow_hour.between(9, 20)) > 0.65
    assert share(moscow_hour.between(1, 5)) < 0.05
    # every day gets a fair share: no day is empty or swallows the week
    per_day = logs["ts"].dt.date.value_counts()
    assert per_day.min() > 0.5 * per_day.max()


# ------------------------------------------------------------------------------------------
# Mess, each at its rate
# ------------------------------------------------------------------------------------------


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
