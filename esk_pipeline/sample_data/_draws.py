"""Who writes, when, through which channel, and what kind of row: the vectorised draws.

All of them take the generator's one `numpy.random.Generator`, so their order in
`generate_logs` is part of what a seed produces. Users: a few write often, most once; each has
a home region and usually writes through the same channel. Times follow a Moscow-time daily
rhythm, quieter at weekends. `MESS_RATES` is the rate of every kind of mess the rows carry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

CHANNELS: tuple[str, ...] = ("web", "mobile_app", "telegram", "phone_transcript", "email")
_CHANNEL_WEIGHTS = (0.30, 0.25, 0.20, 0.15, 0.10)

REGIONS: tuple[str, ...] = (
    "Балашиха",
    "Химки",
    "Подольск",
    "Мытищи",
    "Люберцы",
    "Красногорск",
    "Одинцово",
    "Королёв",
    "Щёлково",
    "Раменское",
)
_REGION_WEIGHTS = (0.16, 0.14, 0.13, 0.11, 0.10, 0.09, 0.08, 0.07, 0.06, 0.06)

MESS_RATES: dict[str, float] = {
    # whole-row kinds, mutually exclusive, drawn for the generated (non-duplicate) rows
    "empty": 0.010,
    "very_short": 0.015,
    "spam": 0.006,
    "long": 0.004,
    # later messages of earlier rows' users (share of all rows): resubmissions and chat follow-ups
    "exact_duplicate": 0.04,
    "near_duplicate": 0.03,
    "follow_up": 0.03,  # a contentless follow-up ("ну что там?") in the same session
    # per-row decorations and damage of ordinary rows (independent flags)
    "greeting": 0.30,
    "sign_off": 0.20,
    "name": 0.07,
    "phone": 0.08,
    "email": 0.03,
    "document_number": 0.02,
    "typo": 0.15,
    "wrong_layout": 0.01,
    "caps": 0.04,
    "mixed_case": 0.02,
    "whitespace": 0.08,
    "emoji": 0.07,
    # content that makes classification honest rather than trivial
    "multi_topic": 0.08,  # a second request from a related domain tacked on ("И ещё: ...")
}
"""Rate of each kind of mess. Emoji, CAPS, mixed case and wrong layout are not applied to
`phone_transcript` rows (speech recognisers produce none of them); transcripts are instead
lower-case, unpunctuated and have fillers ("ну", "алло"). Wrong layout only affects Cyrillic
text (the Latin layout is the one a Russian typist slips into)."""

ROW_KINDS = ("normal", "empty", "very_short", "spam", "long")
FLAGS = (
    "greeting",
    "sign_off",
    "name",
    "phone",
    "email",
    "document_number",
    "typo",
    "wrong_layout",
    "caps",
    "mixed_case",
    "whitespace",
    "emoji",
    "multi_topic",
)

# Moscow-time hour profile (index = hour 0..23): quiet at night, peaks late morning and evening.
# fmt: off
_HOUR_PROFILE = (
    0.6, 0.35, 0.2, 0.15, 0.15, 0.3, 0.8, 2.0, 3.6, 5.2, 6.4, 6.6,
    6.2, 6.0, 6.0, 5.7, 5.5, 5.6, 6.0, 6.2, 5.6, 4.3, 2.7, 1.4,
)
# fmt: on
_MOSCOW_UTC_OFFSET_HOURS = 3
_WEEKEND_FACTOR = 0.7
_USERS_PER_ROW = 0.55
_USER_SKEW = 1.3  # > 1: a few users write many times, most write once
_OWN_CHANNEL_SHARE = 0.85  # how often a user writes through their usual channel


def draw_timestamps(rng: np.random.Generator, n: int, start: date, days: int) -> np.ndarray:
    """Epoch nanoseconds in [start, start + days) UTC with a Moscow-time daily rhythm.

    The hour profile is in Moscow time and rotated into the same UTC day, so every ts stays
    inside the requested UTC dates (what daily partitions are cut on)."""
    weekday = np.array([(start.toordinal() + d) % 7 for d in range(days)])  # 5, 6 = Sat, Sun
    day_weights = np.where(weekday >= 5, _WEEKEND_FACTOR, 1.0)
    day = rng.choice(days, size=n, p=day_weights / day_weights.sum())
    hours = np.asarray(_HOUR_PROFILE)
    moscow_hour = rng.choice(24, size=n, p=hours / hours.sum())
    utc_hour = (moscow_hour - _MOSCOW_UTC_OFFSET_HOURS) % 24
    seconds = day * 86_400 + utc_hour * 3_600 + rng.integers(0, 3_600, size=n)
    origin = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    return (origin + seconds) * 1_000_000_000 + rng.integers(0, 1_000, size=n) * 1_000_000


def draw_users(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user id, channel, region) per row: a few users write often, most once; each user has
    a home region and usually writes through the same channel."""
    n_users = max(1, round(n * _USERS_PER_ROW))
    user_numbers = rng.choice(1_000_000, size=n_users, replace=False)
    home_region = rng.choice(len(REGIONS), size=n_users, p=_REGION_WEIGHTS)
    usual_channel = rng.choice(len(CHANNELS), size=n_users, p=_CHANNEL_WEIGHTS)
    user = np.minimum((n_users * rng.random(n) ** _USER_SKEW).astype(np.int64), n_users - 1)
    channel = np.where(
        rng.random(n) < _OWN_CHANNEL_SHARE,
        usual_channel[user],
        rng.choice(len(CHANNELS), size=n, p=_CHANNEL_WEIGHTS),
    )
    user_ids = np.array([f"u{number:06d}" for number in user_numbers.tolist()], dtype=object)
    return (
        user_ids[user],
        np.asarray(CHANNELS, dtype=object)[channel],
        np.asarray(REGIONS, dtype=object)[home_region[user]],
    )


def session_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"s{v:012x}" for v in rng.integers(0, 2**48, size=n).tolist()], dtype=object)


def draw_kinds(rng: np.random.Generator, n: int) -> np.ndarray:
    special = [MESS_RATES[kind] for kind in ROW_KINDS[1:]]
    p = np.array([1.0 - sum(special), *special])
    return rng.choice(len(ROW_KINDS), size=n, p=p)
