"""The seeded generator of realistic ESK contact-centre logs (what `esk_logs` in ClickHouse holds).

Why it exists: the local text classifier is trained and benchmarked on these rows, and every
stage (ETL, labelling, review, balancing) is exercised on them, so they must look like real
citizen messages: varied Russian phrasings built from per-domain template banks with slots
(addresses, sums, months, bus and clinic numbers, meter types...), shared vocabulary between
related domains ("вода", "квитанция", "счётчик" appear in housing, meters and payments alike),
an imbalanced domain mix, a daytime rhythm, and the mess real logs have (typos, wrong keyboard
layout, CAPS, stray whitespace, emoji, phone numbers and other personal data, duplicates, empty,
one-character and very long messages, spam) - each at the rate written in `MESS_RATES`.

It is deliberately not trivially separable: some wordings honestly belong to two domains and
are generated for both (`_RU_BORDERLINE`), some messages add a second request from a related
domain, and chat follow-ups ("ну что там?") carry their session's domain with no cue in the
text. A TF-IDF + linear SVM trained on one seed scores about 0.90 on another (a template-only
set scored 0.995), which is where classifiers on real contact-centre logs land.

`generate_logs` returns one row per message with columns `text`, `ts` (datetime64[ns, UTC]),
`user_id`, `channel`, `region`, `session_id` and `true_domain`. `true_domain` is the taxonomy
id the text was generated for: ground truth for benchmarks and tests ONLY. Real logs do not
have it, so it is dropped before the frame is inserted into ClickHouse. Empty, very short and
spam rows carry the taxonomy's out-of-scope id (`Taxonomy.other_id`) when it has one.

Any taxonomy works: a domain with a Russian template bank below (matched by id, used only when
the domain itself is written in Russian) gets those templates plus its taxonomy examples;
any other domain gets texts framed from its examples and description words, with greetings and
sign-offs in its own language (Russian, English, or none for other scripts).

Deterministic: the same arguments give an identical frame. All randomness comes from one
`numpy.random.Generator` (vectorised draws: domains, times, users, flags) and one
`random.Random` (per-row text composition), both seeded from `seed`; nothing iterates a set.
"""

from __future__ import annotations

import random
import re
import string
import zlib
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.keyboard import KEY_NEIGHBOURS, to_latin_layout
from esk_pipeline.pipeline.taxonomy import OTHER_DOMAIN_IDS, Domain, Taxonomy

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

SAMPLE_DOMAIN_WEIGHTS: dict[str, float] = {
    "housing_utilities": 0.23,
    "meter_readings": 0.17,
    "payments": 0.15,
    "transport": 0.08,
    "healthcare": 0.08,
    "documents": 0.07,
    "roads": 0.06,
    "public_order": 0.05,
    "social_benefits": 0.03,
    "education": 0.025,
    "waste": 0.025,
    "other": 0.03,
}
"""Share of messages per domain id, as a contact centre sees them: utilities, meters and
payments dominate; education, waste and benefits are rare (the balancing step's work)."""

_UNLISTED_DOMAIN_WEIGHT = 0.08
"""Weight of the first domain not in `SAMPLE_DOMAIN_WEIGHTS`; the k-th such gets this / (1 + k),
so a foreign taxonomy is imbalanced too (in its own order)."""

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

_ROW_KINDS = ("normal", "empty", "very_short", "spam", "long")
_FLAGS = (
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

# --------------------------------------------------------------------------------------------
# Slot fillers: "{name}" in a template is replaced by _SLOTS[name](rng); a trailing digit
# ("{reading2}") asks for a second independent value of the same slot.
# --------------------------------------------------------------------------------------------

# fmt: off
_STREETS = (
    ("ул.", "Ленина"), ("ул.", "Советская"), ("ул.", "Гагарина"), ("ул.", "Мира"),
    ("ул.", "Садовая"), ("ул.", "Школьная"), ("ул.", "Молодёжная"), ("ул.", "Пушкина"),
    ("ул.", "Строителей"), ("ул.", "Центральная"), ("ул.", "Лесная"), ("ул.", "Победы"),
    ("ул.", "Юбилейная"), ("ул.", "Заводская"), ("ул.", "8 Марта"), ("ул.", "Комсомольская"),
    ("пр-т", "Ленинский"), ("пр-т", "Мира"), ("пр-т", "Космонавтов"), ("ш.", "Носовихинское"),
    ("ш.", "Ярославское"), ("пер.", "Почтовый"), ("б-р", "Нестерова"), ("мкр.", "Южный"),
    ("мкр.", "Железнодорожный"), ("ул.", "Новая"), ("ул.", "Парковая"), ("ул.", "Чапаева"),
)
_MONTHS = (
    ("январь", "январе", "января"), ("февраль", "феврале", "февраля"), ("март", "марте", "марта"),
    ("апрель", "апреле", "апреля"), ("май", "мае", "мая"), ("июнь", "июне", "июня"),
    ("июль", "июле", "июля"), ("август", "августе", "августа"),
    ("сентябрь", "сентябре", "сентября"), ("октябрь", "октябре", "октября"),
    ("ноябрь", "ноябре", "ноября"), ("декабрь", "декабре", "декабря"),
)
_MALE_FIRST = ("Александр", "Сергей", "Андрей", "Дмитрий", "Алексей", "Михаил", "Игорь", "Олег",
               "Николай", "Владимир", "Юрий", "Артём")
_FEMALE_FIRST = ("Елена", "Ольга", "Татьяна", "Наталья", "Ирина", "Светлана", "Мария", "Анна",
                 "Галина", "Людмила", "Марина", "Екатерина", "Валентина")
_SURNAMES = ("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов",
             "Новиков", "Морозов", "Волков", "Соловьёв", "Васильев", "Зайцев", "Павлов",
             "Семёнов", "Голубев", "Виноградов", "Богданов", "Воробьёв")
_FATHER_NAMES = ("Петров", "Иванов", "Сергеев", "Александров", "Николаев", "Владимиров",
                 "Андреев", "Михайлов", "Викторов", "Юрьев")
_EN_NAMES = ("John Smith", "Emily Clark", "Michael Brown", "Sarah Johnson", "David Lee",
             "Anna Miller", "James Wilson", "Laura Davis")
_EMAIL_HANDLES = ("ivanova", "petrov", "olga", "smirnov.a", "m.kuznetsova", "sergey", "nata",
                  "alex", "tanya", "babushka", "lena.s", "dmitry", "user", "irina.v")
# fmt: on
_EMAIL_HOSTS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "list.ru", "inbox.ru", "rambler.ru")


def _pick(values: Sequence[str]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(values)


# The personal data planted in the row being written, (kind, value) in order, when the caller
# asked for it (`generate_logs(planted_pii=True)`): ground truth for the PII benchmark.
_PLANTED: ContextVar[list[tuple[str, str]] | None] = ContextVar("planted_pii", default=None)
PII_KINDS = ("email", "phone", "card", "snils", "passport", "oms", "account", "flat", "name")


def _note(kind: str, value: str) -> str:
    planted = _PLANTED.get()
    if planted is not None:
        planted.append((kind, value))
    return value


def _planted(kind: str, fill: Callable[[random.Random], str]) -> Callable[[random.Random], str]:
    """A slot filler that notes what it planted (it draws exactly what `fill` draws)."""
    return lambda rng: _note(kind, fill(rng))


def _house(rng: random.Random) -> str:
    number = rng.randint(1, 120)
    suffix = rng.choice(("", "", "", "", "А", "Б", "к1", "к2", " корп. 3", "/2"))
    return f"{number}{suffix}"


def _street(rng: random.Random) -> str:
    kind, name = rng.choice(_STREETS)
    return f"{kind} {name}"


def _address(rng: random.Random) -> str:
    kind, name = rng.choice(_STREETS)
    house, flat = _house(rng), rng.randint(1, 320)
    layout = rng.randrange(6)
    if layout != 4:  # the one layout without a flat
        _note("flat", str(flat))
    if layout == 0:
        return f"{kind} {name}, д. {house}, кв. {flat}"
    if layout == 1:
        return f"{kind} {name} {house}-{flat}"
    if layout == 2:
        return f"{name} {house} кв {flat}"
    if layout == 3:
        return f"{kind} {name}, дом {house}, квартира {flat}"
    if layout == 4:
        return f"{kind}{name}, д.{house}"
    return f"г. {rng.choice(REGIONS)}, {kind} {name}, {house}, кв. {flat}"


def _money(rng: random.Random) -> str:
    amount = f"{rng.choice((rng.randint(150, 9999), rng.randint(1000, 48000))):,}"
    unit = rng.choice((" руб.", " р", " рублей", " ₽", "р.", " руб"))
    if rng.random() < 0.2:
        return f"{amount.replace(',', ' ')},{rng.randint(0, 99):02d}{unit}"
    return amount.replace(",", rng.choice((" ", ""))) + unit


def _full_name(rng: random.Random) -> str:
    female = rng.random() < 0.6
    surname = rng.choice(_SURNAMES) + ("а" if female else "")
    first = rng.choice(_FEMALE_FIRST if female else _MALE_FIRST)
    patronymic = rng.choice(_FATHER_NAMES) + ("на" if female else "ич")
    layout = rng.randrange(3)
    if layout == 0:
        return f"{surname} {first} {patronymic}"
    if layout == 1:
        return f"{first} {surname}"
    return f"{surname} {first[0]}.{patronymic[0]}."


def _first_name(rng: random.Random) -> str:
    return rng.choice(_FEMALE_FIRST if rng.random() < 0.6 else _MALE_FIRST)


def _phone(rng: random.Random) -> str:
    code = rng.choice(("916", "903", "925", "926", "985", "977", "999", "915", "495", "498"))
    a, b, c = rng.randint(100, 999), rng.randint(0, 99), rng.randint(0, 99)
    layout = rng.randrange(6)
    if layout == 0:
        return f"+7 ({code}) {a}-{b:02d}-{c:02d}"
    if layout == 1:
        return f"8{code}{a}{b:02d}{c:02d}"
    if layout == 2:
        return f"8-{code}-{a}-{b:02d}-{c:02d}"
    if layout == 3:
        return f"+7{code}{a}{b:02d}{c:02d}"
    if layout == 4:
        return f"8 ({code}) {a} {b:02d} {c:02d}"
    return f"+7 {code} {a} {b:02d} {c:02d}"


def _email(rng: random.Random) -> str:
    """An address, sometimes written the way people dodge spam bots or dictate it: "собака"
    or "(at)" for the @, spaces around it, a space for the dot. The style follows from the
    address itself (no extra draw, so the rest of the generated data stays as it was)."""
    number = rng.choice(("", "", str(rng.randint(1, 99)), str(rng.randint(1950, 2010))))
    handle = f"{rng.choice(_EMAIL_HANDLES)}{number}"
    host = rng.choice(_EMAIL_HOSTS)
    style = zlib.crc32(f"{handle}@{host}".encode()) % 10
    if style == 0:
        return f"{handle} собака {host}"
    if style == 1:
        return f"{handle}(at){host}"
    if style == 2:
        return f"{handle}@{host.replace('.', ' ')}"
    if style == 3:
        return f"{handle} @ {host}"
    return f"{handle}@{host}"


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _card(rng: random.Random) -> str:
    prefix = rng.choice(("2202", "2200", "4276", "5469", "4279"))
    return f"{prefix} {_digits(rng, 4)} {_digits(rng, 4)} {_digits(rng, 4)}"


def _snils(rng: random.Random) -> str:
    return f"{_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 3)} {_digits(rng, 2)}"


def _passport(rng: random.Random) -> str:
    return f"{_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 6)}"


def _plate(rng: random.Random) -> str:
    letters = "АВЕКМНОРСТУХ"
    return (
        f"{rng.choice(letters)}{rng.randint(1, 999):03d}{rng.choice(letters)}"
        f"{rng.choice(letters)} {rng.choice(('50', '150', '750', '190', '77', '790'))}"
    )


# fmt: off
_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "addr": _address,
    "street": _street,
    "house": _house,
    "flat": _planted("flat", lambda rng: str(rng.randint(1, 320))),
    "floor": lambda rng: str(rng.randint(2, 17)),
    "entrance": lambda rng: str(rng.randint(1, 8)),
    "n": lambda rng: str(rng.randint(2, 4)),
    "group": _pick(("1", "2", "3")),
    "town": _pick(REGIONS),
    "period": _pick(("уже третий день", "вторую неделю", "уже неделю", "с понедельника",
                     "со вчерашнего дня", "с утра", "уже месяц", "пятый день", "два дня",
                     "с прошлой пятницы", "уже 10 дней", "который день")),
    "count_times": _pick(("три раза", "5 раз", "несколько раз", "уже второй раз", "дважды",
                          "раз десять")),
    "month": lambda rng: rng.choice(_MONTHS)[0],
    "month_prep": lambda rng: rng.choice(_MONTHS)[1],
    "month_gen": lambda rng: rng.choice(_MONTHS)[2],
    "date": lambda rng: rng.choice(
        (
            f"{rng.randint(1, 28)} {rng.choice(_MONTHS)[2]}",
            f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}",
            f"{rng.randint(1, 28)}-го числа",
        )
    ),
    "time": _pick(("в 5 утра", "в 23:30", "после полуночи", "с 8 утра", "в 7:00", "в 2 ночи",
                   "в 10 вечера", "в 6 утра")),
    "weekday": _pick(("в воскресенье", "в субботу", "каждый день", "по выходным",
                      "в праздники", "каждый вечер")),
    "sum": _money,
    "reading": lambda rng: rng.choice((f"{rng.randint(0, 99999):05d}", str(rng.randint(10, 9999)),
                                       f"{rng.randint(10, 999)},{rng.randint(0, 999):03d}")),
    "ls": _planted("account", lambda rng: _digits(rng, 10)),
    "ticket": lambda rng: rng.choice((f"№{_digits(rng, 7)}", f"№ {_digits(rng, 8)}",
                                      f"2026-{_digits(rng, 6)}")),
    "meter": _pick(("счётчик горячей воды", "счетчик ХВС", "электросчётчик", "счётчик газа",
                    "водосчётчик", "счетчик на холодную воду", "двухтарифный счётчик",
                    "счётчик ГВС")),
    "meter_gen": _pick(("счётчика горячей воды", "счетчика ХВС", "электросчётчика",
                        "счётчика газа", "счетчиков воды", "прибора учёта тепла",
                        "счётчика холодной воды", "счетчика электроэнергии")),
    "service_acc": _pick(("отопление", "горячую воду", "холодную воду", "капремонт", "домофон",
                          "вывоз мусора", "свет", "газ", "содержание жилья", "водоотведение",
                          "антенну", "электроэнергию")),
    "uk": _pick(("управляющая компания", "УК «Комфорт»", "Жилищник", "ЖЭК", "управляйка",
                 "УК «Наш дом»", "ТСЖ", "УК")),
    "channel_via": _pick(("через Госуслуги", "через личный кабинет", "в приложении",
                          "на сайте", "через бот в телеграме", "по телефону")),
    "bank": _pick(("Сбер", "ВТБ", "Т-Банк", "Почта Банк", "Альфа", "Озон Банк")),
    "bus": lambda rng: rng.choice(
        (str(rng.randint(1, 99)), str(rng.randint(100, 1199)), f"{rng.randint(1, 60)}к",
         f"т{rng.randint(1, 40)}", f"м{rng.randint(1, 15)}")
    ),
    "tram": lambda rng: str(rng.randint(1, 45)),
    "metro": _pick(("Котельники", "Жулебино", "Выхино", "Щёлковская", "Планерная",
                    "Медведково", "Ховрино", "Новокосино", "Румянцево", "Лесопарковая")),
    "stop": _pick(("Центральная площадь", "Больница", "ТЦ Глобус", "Школа", "Станция",
                   "Рынок", "Поликлиника", "Детский сад", "Улица Мира", "Администрация")),
    "clinic_num": lambda rng: str(rng.randint(1, 230)),
    "doctor_dat": _pick(("терапевту", "окулисту", "неврологу", "хирургу", "лору",
                         "кардиологу", "эндокринологу", "педиатру", "стоматологу",
                         "гинекологу", "урологу", "ортопеду", "дерматологу")),
    "temp": _pick(("38,5", "39", "37,8", "под 40", "38", "39,2")),
    "doc": _pick(("паспорт", "загранпаспорт", "СНИЛС", "полис ОМС", "ИНН",
                  "свидетельство о рождении", "водительское удостоверение")),
    "benefit": _pick(("детское пособие", "единое пособие", "пособие по уходу за ребёнком",
                      "субсидия на ЖКУ", "выплата многодетным", "компенсация за коммуналку",
                      "ЕДВ", "региональная доплата к пенсии")),
    "school_num": lambda rng: str(rng.randint(1, 45)),
    "kg_num": lambda rng: str(rng.randint(1, 120)),
    "child_age": _pick(("2 года", "3 года", "4 года", "5 лет", "1,5 года")),
    "bulky": _pick(("старый диван", "шкаф", "холодильник", "строительный мусор", "матрас",
                    "ветки после обрезки деревьев", "стиральную машину")),
    "noise": _pick(("громкая музыка", "крики", "топот", "собака лает", "караоке", "перфоратор",
                    "ругань")),
    "plate": _plate,
    "full_name": _planted("name", _full_name),
    "first_name": _planted("name", _first_name),
    "en_name": _planted("name", _pick(_EN_NAMES)),
    "phone": _planted("phone", _phone),
    "email": _planted("email", _email),
    "card": _planted("card", _card),
    "snils": _planted("snils", _snils),
    "passport": _planted("passport", _passport),
    "oms": _planted("oms", lambda rng: _digits(rng, 16)),
}
# fmt: on

_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class _Template:
    """A text with "{slot}" holes, checked against `_SLOTS` once at import."""

    text: str
    slots: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> _Template:
        slots = tuple(name for _, name, _, _ in _FORMATTER.parse(text) if name)
        for name in slots:
            if name.rstrip(string.digits) not in _SLOTS:
                raise KeyError(f"template {text!r} uses unknown slot {name!r}")
        return cls(text, slots)

    def render(self, rng: random.Random) -> str:
        if not self.slots:
            return self.text
        return self.text.format_map({s: _SLOTS[s.rstrip(string.digits)](rng) for s in self.slots})


def _parse_all(texts: Sequence[str]) -> tuple[_Template, ...]:
    return tuple(_Template.parse(t) for t in texts)


# --------------------------------------------------------------------------------------------
# Russian template banks, keyed by domain id. Phrasings mix complaints, questions, requests,
# angry and polite tones; vocabulary deliberately overlaps between neighbouring domains.
# --------------------------------------------------------------------------------------------

_RU_TEMPLATES: dict[str, tuple[str, ...]] = {
    "housing_utilities": (
        "Нет горячей воды {period}. Адрес: {addr}.",
        "По адресу {addr} {period} нет горячей воды, когда дадут?",
        "В квартире холодно, батареи еле тёплые. {addr}",
        "Когда включат отопление в доме {house} по {street}?",
        "Течёт крыша, заливает квартиру на {floor} этаже, управляющая компания не реагирует.",
        "Не работает лифт в {entrance} подъезде {period}. В доме пожилые люди!",
        "Прорвало трубу в подвале, воняет на весь подъезд. {addr}",
        "{uk} не убирает подъезд, грязь, окурки, мусор на лестнице.",
        "Сосед сверху затопил, потолок в ванной мокрый. Звонила в {uk} - бесполезно.",
        "Из крана течёт ржавая вода {period}, пить невозможно.",
        "Очень слабый напор холодной воды на {floor} этаже.",
        "Отключили воду без предупреждения, объявления не было. {addr}",
        "В подъезде не горит свет на {floor} этаже, темно, страшно ходить.",
        "Протекает стояк отопления в квартире {flat}, вызвали аварийку - никто не приехал.",
        "Когда закончится плановое отключение горячей воды? Обещали до {date}.",
        "Почему в квартире +16? Батареи холодные, а в квитанции за отопление начисляют полностью.",
        "Плесень в квартире из-за протечки с крыши, {uk} обещает прийти {period}.",
        "Не закрывается входная дверь в подъезд, домофон сломан.",
        "Сломан домофон, не могу открыть дверь гостям. {addr}",
        "Нужна замена стояков, трубы старые, постоянно текут.",
        "Из подвала пахнет канализацией, жильцы задыхаются. Дом {house}, {street}.",
        "Кто отвечает за ремонт козырька над подъездом? Кусок бетона упал.",
        "Счётчик на горячую воду крутится, а вода еле тёплая. Когда дадут нормальную горячую воду?",
        "Прошу провести осмотр дома {addr}: трещина в стене, окна в подъезде не закрываются.",
        "Управляющая компания не отвечает на звонки, аварийная служба не берёт трубку.",
        "Засор канализации в стояке, вода идёт обратно в ванну.",
        "Батарея в комнате ледяная, остальные горячие, стравить воздух некому.",
        "Лифт застревает каждый день, сегодня застрял ребёнок между этажами.",
        "Горячая вода еле тёплая, сливаем минут по 10 - а платим за горячую!",
        "Когда будет капитальный ремонт крыши в доме {house}? Заливает каждый дождь.",
        "В подъезде крысы и тараканы, прошу провести дезинсекцию.",
        "Нет электричества в квартире {period}, у соседей тоже нет света.",
        "нет воды",
        "Дайте горячую воду!!! {addr}",
    ),
    "meter_readings": (
        "передать показания",
        "Передать показания: ХВС {reading}, ГВС {reading2}",
        "Не могу внести показания {meter_gen} в личном кабинете, выдаёт ошибку.",
        "Как передать показания электросчётчика, если сайт не работает?",
        "Ошибочно передала показания {meter_gen} за {month}, как исправить?",
        "Истёк срок поверки {meter_gen}, кто должен менять и сколько это стоит?",
        "Где посмотреть переданные показания за прошлый месяц?",
        "Показания {meter_gen}: {reading}. Лицевой счёт {ls}.",
        "Не принимаются показания {channel_via}, пишет, что период закрыт.",
        "До какого числа нужно передавать показания воды?",
        "Передала показания {date}, а в квитанции начислено по нормативу. Почему?",
        "Поменяли {meter}, как теперь передавать показания с нового прибора?",
        "Сломался {meter}, цифры не крутятся. Что делать?",
        "Вызвать мастера на поверку {meter_gen} - куда обращаться?",
        "Передаю показания: день {reading}, ночь {reading2}.",
        "В личном кабинете не отображается новый счётчик после замены.",
        "Почему нельзя передать показания раньше 15 числа?",
        "Уезжала на {n} месяца, показания не передавала, как теперь передать за всё время?",
        "Счётчик воды показывает больше, чем реально потратили, подозреваю неисправность.",
        "Как опломбировать {meter} после установки?",
        "Бот в телеграме не принимает показания, пишет «неверный формат».",
        "Какие цифры передавать - все или только чёрные до запятой?",
        "Передаю показания по адресу {addr}: {reading}",
        "Поставили умный счётчик, он сам передаёт показания или нужно вручную?",
        "Как передать показания счётчика газа? В квитанции нет такой строки.",
        "Неправильно внесли показания за {month}, теперь начислили огромную сумму за воду.",
        "Прошу принять показания {meter_gen} {reading}, на сайте ошибка.",
        "Кто должен платить за поверку счётчиков - я или управляющая компания?",
        "Не пришло напоминание о передаче показаний в этом месяце.",
        "показания {reading} {reading2} кв {flat}",
        "Почему показания за {month} не учтены? Передавала {channel_via}.",
    ),
    "payments": (
        "Пришла квитанция с огромной суммой {sum}, откуда?",
        "Прошу сделать перерасчёт за {service_acc} за {month}.",
        "Как оплатить коммуналку без комиссии?",
        "Оплатила {date}, а долг всё ещё висит.",
        "Не пришла квитанция за {month}.",
        "Откуда взялись пени в платёжке? Всегда плачу вовремя.",
        "Двойное начисление за {service_acc} в квитанции за {month}.",
        "Списали деньги с карты {bank}, а оплата не прошла. Сумма {sum}.",
        "Почему подорожала квартплата? В {month_prep} было меньше на {sum}.",
        "Горячей воды не было {n} недели, а начислили полностью. Верните деньги.",
        "Как получить справку об отсутствии задолженности по ЖКУ?",
        "Лицевой счёт {ls}, прошу проверить начисления за {service_acc}.",
        "Начисляют за капремонт, хотя дом новый.",
        "Как оплатить квитанцию через приложение {bank}? Не находит по QR-коду.",
        "Ошибочно оплатила чужой лицевой счёт, как вернуть деньги?",
        "Почему начисляют по нормативу, если счётчики стоят и показания я передаю?",
        "Хочу разделить лицевой счёт с бывшим мужем, как это сделать?",
        "Пришёл долг {sum} от прошлых жильцов, я тут ни при чём.",
        "Как подключить автоплатёж за ЖКУ?",
        "В квитанции неправильно указана площадь квартиры, начисляют больше.",
        "Можно ли оплатить долг частями? Сумма {sum}.",
        "Начислили за вывоз мусора на {n} человек, а прописан один.",
        "Куда пропали мои {sum}? Оплата была {date}, в личном кабинете не отображается.",
        "Грозят отключить свет за долг, но я всё оплатила!",
        "Почему в единой платёжке две строки за воду?",
        "Электронная квитанция не приходит на почту с {month_gen}.",
        "Комиссия банка при оплате ЖКУ {n}%, это законно?",
        "Уберите пени, я лежала в больнице и не могла платить.",
        "Прошу выслать копию квитанции за {month} для налогового вычета.",
        "сумма в квитанции {sum} это ошибка??",
        "Переплата {sum} за воду, когда вернут или зачтут?",
    ),
    "transport": (
        "Автобус {bus} не ходит по расписанию, ждём по {n}0 минут.",
        "Как пополнить транспортную карту {channel_via}?",
        "Водитель автобуса {bus} нагрубил пассажиру, прошу наказать.",
        "Изменили маршрут трамвая {tram} без предупреждения.",
        "Где восстановить льготный проездной?",
        "В метро на станции {metro} не работает эскалатор {period}.",
        "Утром автобус {bus} проехал мимо остановки «{stop}», не остановился.",
        "Почему отменили автобус {bus}? Как теперь добираться до станции?",
        "В автобусе {bus} не работает валидатор, списали дважды.",
        "Электричка до Москвы опоздала на {n}0 минут, я опоздал на работу.",
        "Автобус {bus} переполнен в час пик, невозможно сесть, добавьте рейсов.",
        "Водитель маршрутки {bus} говорил по телефону и курил за рулём.",
        "Заблокировали карту «Тройка», а деньги на ней остались.",
        "Как получить социальную карту для бесплатного проезда пенсионеру?",
        "В автобусе холодно, печка не работает, люди мёрзнут.",
        "Остановку «{stop}» перенесли, теперь идти {n}00 метров по грязи.",
        "Почему не работает приложение с онлайн-табло автобусов?",
        "Последний автобус {bus} уходит в 21:00, а с работы многие возвращаются позже.",
        "Школьников не пускают в автобус по школьной карте.",
        "Контролёр оштрафовал, хотя карта была оплачена.",
        "Нет пандуса в автобусе {bus}, человек с коляской не может зайти.",
        "На остановке «{stop}» нет расписания и навеса.",
        "Предлагаю пустить автобус от {town} до метро {metro}.",
        "Забыла сумку в автобусе {bus}, куда обращаться в бюро находок?",
        "Трамвая {tram} нет уже {n}0 минут, ни одного!",
        "Почему проезд подорожал? Было 60 рублей, стало 70.",
        "Водитель не выдаёт билет при оплате наличными.",
        "Поезд метро стоит в тоннеле {n}0 минут, без объявлений.",
        "автобус {bus} когда будет",
    ),
    "healthcare": (
        "Не могу записаться к {doctor_dat} в поликлинике № {clinic_num}, нет талонов.",
        "Как вызвать врача на дом? Температура {temp}.",
        "Нет свободных талонов к {doctor_dat} на {n} недели вперёд.",
        "Хочу прикрепиться к другой поликлинике, ближе к дому.",
        "Не выдают льготный рецепт на лекарства, говорят, нет в наличии.",
        "Как получить результаты анализов {channel_via}?",
        "Регистратура поликлиники № {clinic_num} не берёт трубку {period}.",
        "Врач не пришёл на вызов, ждали весь день.",
        "Очередь к {doctor_dat} по {n} часа, время записи не соблюдается.",
        "Как получить полис ОМС для ребёнка?",
        "Нужна справка в бассейн и в детский сад, куда записаться?",
        "Отменили приём у {doctor_dat} в последний момент, никто не предупредил.",
        "Скорая ехала {n} часа к пожилому человеку!",
        "Почему закрыли процедурный кабинет в поликлинике № {clinic_num}?",
        "Как записаться на диспансеризацию?",
        "Направление на МРТ дали, а записи нет до следующего месяца.",
        "Врач нагрубил на приёме, прошу разобраться. Поликлиника № {clinic_num}.",
        "Где сделать прививку от гриппа бесплатно?",
        "В аптеке нет инсулина по льготному рецепту {period}.",
        "Не могу записаться к врачу через Госуслуги, пишет «нет доступных специалистов».",
        "Ребёнок заболел, педиатр на дом не идёт, говорят записываться.",
        "Как получить больничный лист в электронном виде?",
        "Не работает лифт в поликлинике, пожилые не могут подняться на {floor} этаж.",
        "Где взять выписку из медицинской карты?",
        "Записали к {doctor_dat} на 9:00, а приняли через два часа.",
        "Нужна госпитализация по направлению, а мест нет.",
        "Хочу сменить участкового терапевта.",
        "запись к {doctor_dat}",
    ),
    "documents": (
        "Как записаться в МФЦ на замену паспорта?",
        "Какие документы нужны для регистрации ребёнка по месту жительства?",
        "Где получить справку о составе семьи?",
        "Заявление на Госуслугах висит «в обработке» {period}.",
        "Потеряла паспорт, что делать?",
        "Нужна выписка из домовой книги, куда обращаться?",
        "Сколько делается {doc}? Подавала заявление {date}.",
        "В МФЦ огромная очередь, талонов нет, запись только на {month}.",
        "Как оформить временную регистрацию для родственника?",
        "Не могу войти в Госуслуги, учётная запись заблокирована.",
        "Где забрать готовый {doc}? Пришло СМС, что готов.",
        "Ошибка в фамилии в свидетельстве о рождении, как исправить?",
        "Как выписаться из квартиры, если живу в другом городе?",
        "Нужна справка об отсутствии задолженности для продажи квартиры.",
        "Как получить ИНН через МФЦ?",
        "МФЦ на {street} закрыт, хотя по графику должен работать.",
        "Записалась в МФЦ на {date}, а запись пропала.",
        "Как поменять СНИЛС после смены фамилии?",
        "Как заверить копию документа для суда?",
        "Подавала на загранпаспорт {period} назад, срок прошёл, статус не меняется.",
        "Справку о рождении ребёнка не выдали в роддоме, где получить?",
        "Как восстановить документы на квартиру?",
        "Где подтвердить учётную запись Госуслуг рядом с {addr}?",
        "Отказали в регистрации по месту жительства, не объяснив причину.",
        "Можно ли подать документы на паспорт не по прописке?",
        "Как получить архивную справку о стаже?",
        "в документе {doc} опечатка в дате рождения",
    ),
    "social_benefits": (
        "Не пришло детское пособие за {month}.",
        "Как оформить субсидию на оплату ЖКУ?",
        "Положена ли льгота пенсионеру по коммунальным платежам?",
        "Отказали в выплате многодетной семье, причина непонятна.",
        "Как подать на единое пособие?",
        "Куда обращаться по материнскому капиталу?",
        "Выплата «{benefit}» не поступила {period}.",
        "Почему уменьшили пенсию с {month_gen}?",
        "Как получить статус многодетной семьи?",
        "Положена ли компенсация за коммунальные услуги инвалиду {group} группы?",
        "Как оформить удостоверение ветерана труда?",
        "Единое пособие приостановили, пишут, что доход превышает, но это не так.",
        "Как продлить субсидию на ЖКУ, срок заканчивается в {month_prep}?",
        "Обещали выплату к школе, а денег нет.",
        "Как получить бесплатную путёвку для ребёнка в лагерь?",
        "Положено ли бесплатное питание ребёнку из малоимущей семьи?",
        "Где встать на учёт как малоимущая семья?",
        "Можно ли потратить маткапитал на ремонт?",
        "Соцфонд не отвечает, куда звонить по пенсии?",
        "Как оформить льготу по оплате капремонта для пенсионеров старше 70 лет?",
        "Не начислили ЕДВ за {month}, в чём причина?",
        "Как оформить пособие по уходу за инвалидом?",
        "Отказ в субсидии из-за долга за квартиру, но долг погашен {date}.",
        "{benefit} когда придёт?",
    ),
    "education": (
        "Как записать ребёнка в первый класс?",
        "Какое место в очереди в детский сад?",
        "Не работает электронный дневник {period}.",
        "В школьной столовой кормят плохо, дети голодные.",
        "Как записаться в кружок бесплатно?",
        "Перевод ребёнка в другую школу - что нужно?",
        "Ребёнку {child_age}, а мест в садике № {kg_num} нет, предлагают другой район.",
        "В школе № {school_num} холодно в классах, дети сидят в куртках.",
        "Учитель кричит на детей, директор не реагирует.",
        "Когда начнётся запись в 1 класс в этом году?",
        "Почему ребёнка не взяли в школу по прописке?",
        "В садике № {kg_num} воспитатель не следит за детьми.",
        "Как получить компенсацию за детский сад?",
        "Не могу найти ребёнка в списках зачисленных в школу № {school_num}.",
        "Сколько стоит продлёнка в школе № {school_num}?",
        "Школьный автобус не приходит вовремя, дети опаздывают на уроки.",
        "Как перевестись в садик ближе к дому?",
        "Требуют деньги на ремонт класса, это законно?",
        "Нет мест в кружке робототехники, очередь на год.",
        "Очередь в детский сад не двигается {period}.",
        "Кто проверяет качество питания в садике № {kg_num}?",
        "Как оформить ребёнка на семейное обучение?",
        "Не приходят оценки в электронный дневник, учитель говорит, что выставила.",
    ),
    "roads": (
        "Огромная яма на дороге у дома {house} по {street}.",
        "Не горят фонари на {street} {period}.",
        "Не убран снег во дворе, адрес: {addr}.",
        "Сломан светофор на перекрёстке {street} и {street2}.",
        "Наледь на тротуаре у остановки «{stop}», люди падают.",
        "Разбитый асфальт во дворе после ремонта труб, так и не восстановили.",
        "Нужен пешеходный переход у школы № {school_num}, дети бегают через дорогу.",
        "Во дворе нет парковки, машины стоят на тротуарах.",
        "Открытый люк на {street}, кто-нибудь провалится!",
        "Упало дерево на дорогу, проезда нет.",
        "После дождя огромная лужа на тротуаре, не пройти.",
        "Когда отремонтируют дорогу на {street}? Ямы по колено.",
        "Тротуар не посыпают, гололёд, бабушка сломала руку.",
        "Сломана детская площадка во дворе, торчат гвозди. {addr}",
        "Просим установить лежачих полицейских, гоняют по двору.",
        "Снегоуборочная техника завалила снегом въезд во двор.",
        "Не работает уличное освещение в парке.",
        "Сосульки на крышах угрожают пешеходам, никто не сбивает.",
        "Дорожный знак упал на {street}, его не видно.",
        "Бордюр разрушен, машины заезжают на газон.",
        "Прошу благоустроить двор: нет скамеек, нет освещения.",
        "Ремонт дороги идёт {period}, техника брошена, ничего не делают.",
        "Дорогу отремонтировали {n} месяца назад, уже снова ямы.",
        "Нет тротуара до школы, дети идут по проезжей части.",
        "Подтопило подземный переход у станции, ливнёвка забита.",
        "Светофор у остановки «{stop}» переключается слишком быстро, пожилые не успевают.",
        "яма на {street}",
    ),
    "waste": (
        "Мусор не вывозят {period}.",
        "Контейнеры переполнены, мусор валяется вокруг.",
        "Как вывезти старый диван?",
        "Стихийная свалка за гаражами на {street}.",
        "Где поставить контейнер для раздельного сбора?",
        "Мусоровоз приезжает в пять утра и шумит.",
        "Куда выбросить {bulky}? Площадки для крупногабарита нет.",
        "Контейнерная площадка у дома {house} разломана, мусор разносят собаки.",
        "После вывоза мусора вокруг площадки всё разбросано.",
        "Мусоропровод забит {period}, вонь в подъезде.",
        "Строительный мусор от соседей лежит в подъезде.",
        "Почему убрали контейнеры для пластика?",
        "Крысы на мусорной площадке, контейнеры без крышек.",
        "За вывоз ТКО начисляют, а мусор не вывозят!",
        "Нужна заявка на вывоз веток после обрезки деревьев.",
        "Кто-то выбросил {bulky} прямо у подъезда.",
        "Горят мусорные контейнеры, едкий дым.",
        "Куда сдать старые батарейки и градусник?",
        "Бункер для крупногабаритного мусора не поставили, хотя обещали.",
        "Мусорные баки стоят прямо под окнами, запах невыносимый. {addr}",
        "мусор {street} не вывезли",
    ),
    "public_order": (
        "Соседи шумят ночью, {noise} до трёх часов.",
        "Ремонт с перфоратором в воскресенье с утра.",
        "Машины паркуются на газоне у дома {house}.",
        "Бродячие собаки во дворе нападают на детей.",
        "Громкая музыка из кафе до трёх ночи.",
        "Незаконная торговля у метро {metro}.",
        "Соседи сверху: {noise} каждый вечер, на замечания не реагируют.",
        "Сосед делает ремонт {weekday} с 8 утра, это законно?",
        "Во дворе собирается компания, распивают алкоголь, кричат до ночи.",
        "Машина {plate} стоит на газоне {period}.",
        "Кто-то кормит стаю собак у школы № {school_num}, это опасно.",
        "Лает собака в квартире {flat} сутками, хозяев нет.",
        "В подъезде курят и распивают, окурки на лестнице.",
        "Палатка с овощами без документов у остановки «{stop}».",
        "Мотоциклисты гоняют ночью по {street}, ревут моторами.",
        "Заблокировали выезд со двора, машина {plate}.",
        "В соседней квартире притон, постоянно чужие люди.",
        "Фейерверки во дворе {time}, дети не спят.",
        "Караоке в баре на первом этаже до утра.",
        "Торгуют с рук на тротуаре, не пройти.",
        "Соседи сверху топают и двигают мебель по ночам.",
        "Автосигнализация срабатывает каждую ночь у дома {house}.",
        "Брошенный автомобиль во дворе {period}, разбит, мешает уборке снега.",
        "Выгуливают бойцовскую собаку без намордника на детской площадке.",
        "шумят соседи {addr}",
    ),
    "other": (
        "Спасибо за помощь!",
        "тест",
        "Какая погода будет завтра?",
        "Хочу поговорить с оператором.",
        "Подскажите курс доллара.",
        "Алло, вы меня слышите?",
        "Как с вами связаться по телефону?",
        "Спасибо, вопрос решён.",
        "Почему вы так долго отвечаете?",
        "Вы бот или живой человек?",
        "Хочу выразить благодарность оператору, очень помогли.",
        "Где купить ёлку к Новому году?",
        "Посоветуйте хорошего юриста.",
        "Как доехать до Шереметьево?",
        "Можно у вас узнать расписание концертов?",
        "проверка связи",
        "Я просто хотела уточнить, это официальный сайт?",
        "Подскажите номер телефона администрации г.о. {town}.",
        "Как устроиться к вам на работу оператором?",
        "Во сколько открывается Пятёрочка на {street}?",
        "У меня сломался телефон, куда обращаться?",
        "Вопрос не по вашей теме, но может подскажете хорошего сантехника?",
        "Предлагаю сотрудничество по рекламе.",
        "Ошиблась чатом, извините.",
    ),
}

_RU_DETAILS: dict[str, tuple[str, ...]] = {
    "housing_utilities": (
        "Звонили в диспетчерскую {count_times}, обещают, но никто не приходит.",
        "Заявку в {uk} оставляли {date}.",
        "Соседи по стояку тоже без воды.",
        "Мастер пришёл, посмотрел и ушёл.",
        "При этом в квитанции всё начислено как обычно.",
        "В доме маленькие дети и пожилые люди.",
    ),
    "meter_readings": (
        "Лицевой счёт {ls}.",
        "В квитанции за {month} показания не учтены.",
        "Счётчики поверены, акт есть.",
        "Раньше передавала {channel_via}, всё работало.",
        "Фото счётчика могу прислать.",
    ),
    "payments": (
        "Лицевой счёт {ls}.",
        "Чек об оплате сохранила.",
        "Показания счётчиков передаю каждый месяц.",
        "Оплачивала через {bank}.",
        "Сумма выросла в два раза по сравнению с {month_gen}.",
    ),
    "transport": (
        "Остановка «{stop}».",
        "Номер борта не запомнила.",
        "Было это {time}.",
        "Езжу этим маршрутом каждый день на работу.",
        "Такое повторяется {count_times}.",
    ),
    "healthcare": (
        "Поликлиника № {clinic_num}.",
        "Полис ОМС {oms}.",
        "Ребёнку {child_age}.",
        "Я пенсионерка, сама дойти не могу.",
        "Звонила в регистратуру {count_times}.",
    ),
    "documents": (
        "Заявление подавала через Госуслуги.",
        "В МФЦ сказали ждать.",
        "Документы нужны срочно, для продажи квартиры.",
        "Прописка: г. {town}.",
    ),
    "social_benefits": (
        "Все документы подавала вовремя.",
        "У нас трое детей.",
        "Я пенсионер, инвалид {group} группы.",
        "Заявление подано через Госуслуги {date}.",
    ),
    "education": (
        "Ребёнку {child_age}.",
        "Живём рядом со школой № {school_num}.",
        "Заявление подавали через Госуслуги.",
        "Родители всего класса возмущены.",
    ),
    "roads": (
        "Машины бьют колёса, пешеходы падают.",
        "Фото прилагаю.",
        "Рядом школа, дети ходят каждый день.",
        "Это напротив дома {house}.",
    ),
    "waste": (
        "Площадка у дома {house}.",
        "Вонь стоит на весь двор.",
        "Летом там ещё и мухи.",
        "Платим за вывоз исправно.",
    ),
    "public_order": (
        "Полицию вызывали, толку нет.",
        "Участковый не реагирует.",
        "У меня маленький ребёнок, не можем уснуть.",
        "Это продолжается {period}.",
    ),
    "other": (
        "Просто спросить.",
        "Извините, если не туда.",
    ),
}


# fmt: off
_RU_BORDERLINE: tuple[tuple[str, str, str], ...] = (
    ("housing_utilities", "payments", "Горячей воды нет {period}, а начислили полностью."),
    ("housing_utilities", "payments", "Почему начислено за отопление, если батареи холодные?"),
    ("housing_utilities", "payments", "УК берёт деньги за уборку подъезда, а уборки нет."),
    ("housing_utilities", "payments", "За содержание жилья платим {sum}, а лифт не работает."),
    ("housing_utilities", "meter_readings", "Течёт из-под счётчика ГВС, кто будет менять?"),
    ("housing_utilities", "meter_readings", "Сантехник при замене счётчика сорвал кран, течёт."),
    ("housing_utilities", "meter_readings", "Кто должен менять счётчик воды - УК или я?"),
    ("meter_readings", "payments", "Передала показания, а начислили по среднему. Пересчитайте."),
    ("meter_readings", "payments", "Начислили по нормативу, хотя показания передаю {channel_via}."),
    ("meter_readings", "payments", "В квитанции неверные показания счётчика, сумма {sum}."),
    ("meter_readings", "payments", "Как передать показания и сразу оплатить квитанцию?"),
    ("payments", "social_benefits", "Не учли льготу в квитанции за {month}, начислили полностью."),
    ("payments", "social_benefits", "Субсидию на ЖКУ перестали учитывать в квитанции."),
    ("payments", "social_benefits", "Как оплачивать ЖКУ со скидкой для многодетных?"),
    ("roads", "waste", "Во дворе после уборки снега оставили кучи мусора."),
    ("roads", "waste", "Свалка строительного мусора на обочине, {street}."),
    ("roads", "public_order", "Машины паркуются на тротуаре, пешеходам не пройти."),
    ("roads", "public_order", "Во дворе брошенная машина {period}, мешает уборке снега."),
    ("roads", "public_order", "Гоняют по двору на машинах, нужны лежачие полицейские."),
    ("waste", "public_order", "Соседи выбрасывают мусор прямо с балкона."),
    ("waste", "public_order", "Мусоровоз в 5 утра гремит контейнерами, спать невозможно."),
    ("waste", "public_order", "Бродячие собаки растаскивают мусор с площадки у дома {house}."),
    ("transport", "roads", "На остановке «{stop}» не убран снег, к автобусу не подойти."),
    ("transport", "roads", "Не работает светофор у остановки «{stop}», автобусы стоят."),
    ("transport", "roads", "Разбита дорога на маршруте автобуса {bus}, его пустили в объезд."),
    ("healthcare", "documents", "Как получить полис ОМС?"),
    ("healthcare", "documents", "Нужна справка из поликлиники для МФЦ, где взять?"),
    ("healthcare", "documents", "Где поменять полис ОМС после смены фамилии?"),
    ("healthcare", "social_benefits", "Не дают бесплатные лекарства, я льготник."),
    ("healthcare", "social_benefits", "Как получить путёвку в санаторий по инвалидности?"),
    ("documents", "social_benefits", "Какие справки нужны для оформления пособия?"),
    ("documents", "social_benefits", "В МФЦ не принимают документы на субсидию."),
    ("documents", "social_benefits", "Как получить справку о доходах для соцзащиты?"),
    ("education", "social_benefits", "Положено ли бесплатное питание в школе многодетным?"),
    ("education", "social_benefits", "Компенсация за детский сад не приходит {period}."),
    ("education", "healthcare", "Нужна медицинская справка для садика, где сделать быстро?"),
    ("education", "healthcare", "В школе № {school_num} не работает медкабинет."),
    ("education", "documents", "Какие документы нужны для записи в первый класс?"),
    ("transport", "education", "Школьная транспортная карта не работает в автобусе {bus}."),
    ("transport", "social_benefits", "Не работает социальная карта в автобусе."),
    ("housing_utilities", "public_order", "Соседи сверху постоянно затапливают и шумят."),
    ("housing_utilities", "public_order", "В подъезде ночуют посторонние, дверь не закрыта."),
    ("housing_utilities", "waste", "Заварили мусоропровод, куда теперь выносить мусор?"),
    ("housing_utilities", "waste", "В подъезде воняет из мусоропровода {period}."),
    ("other", "payments", "Хочу поговорить с оператором по поводу квитанции."),
    ("other", "housing_utilities", "Спасибо, воду дали."),
    ("other", "transport", "Спасибо, автобус снова ходит."),
)
# fmt: on
"""Messages that honestly belong to either of two domains (annotators split on them too):
each is drawn for both, so the same wording carries either label."""

_RELATED: dict[str, tuple[str, ...]] = {
    "housing_utilities": ("payments", "meter_readings", "waste", "public_order"),
    "meter_readings": ("payments", "housing_utilities"),
    "payments": ("meter_readings", "housing_utilities", "social_benefits"),
    "transport": ("roads", "social_benefits"),
    "healthcare": ("documents", "social_benefits"),
    "documents": ("healthcare", "social_benefits", "education"),
    "social_benefits": ("payments", "documents", "healthcare"),
    "education": ("social_benefits", "healthcare", "transport"),
    "roads": ("transport", "waste", "public_order"),
    "waste": ("roads", "housing_utilities", "public_order"),
    "public_order": ("housing_utilities", "roads", "waste"),
}
"""Domains whose requests a citizen tends to combine in one message (by template bank id)."""


_PLAIN_LANGUAGE_FIELDS = frozenset({"short_texts", "example_frames", "fillers", "connectors"})


@dataclass(frozen=True)
class _Language:
    """The decorations of one language: everything except the domain-specific core text.
    `example_frames` are filled with a domain's own examples ({ex}, {ex_l}, {ex2}, {ex2_l},
    {kw}); the plain fields are used verbatim; the rest are slot templates."""

    greetings: tuple[_Template, ...]
    sign_offs: tuple[_Template, ...]
    intros: tuple[_Template, ...]
    tails: tuple[_Template, ...]
    details: tuple[_Template, ...]
    name_lines: tuple[_Template, ...]
    phone_lines: tuple[_Template, ...]
    email_lines: tuple[_Template, ...]
    document_lines: tuple[_Template, ...]
    stories: tuple[_Template, ...]
    follow_ups: tuple[_Template, ...]
    short_texts: tuple[str, ...]
    example_frames: tuple[str, ...]
    fillers: tuple[str, ...]
    connectors: tuple[str, ...]

    @classmethod
    def build(cls, **fields: tuple[str, ...]) -> _Language:
        return cls(
            **{
                name: texts if name in _PLAIN_LANGUAGE_FIELDS else _parse_all(texts)
                for name, texts in fields.items()
            }
        )


# fmt: off
_RUSSIAN = _Language.build(
    greetings=("Здравствуйте!", "Здравствуйте.", "Добрый день!", "Добрый вечер.", "Доброе утро",
               "Привет", "Здрасьте", "Уважаемые сотрудники!", "Добрый день, уважаемые специалисты!",
               "Здравствуйте, у меня вопрос.", "Добрый день,"),
    sign_offs=("Заранее спасибо.", "Спасибо!", "Жду ответа.", "Спасибо за ответ.",
               "Прошу ответить как можно скорее.", "С уважением.", "Жду обратной связи.",
               "Заранее благодарю"),
    intros=("Я проживаю по адресу {addr}.", "Обращаюсь повторно.", "Я пенсионерка, одна живу.",
            "Пишу от имени жильцов дома {house}.", "У меня маленький ребёнок.",
            "Звонила на горячую линию, сказали писать сюда.", "Я инвалид {group} группы."),
    tails=("Сколько можно?!", "Безобразие!", "Куда смотрят власти?", "Это просто издевательство.",
           "Примите меры!", "Буду жаловаться в прокуратуру.", "Надоело!!!", "Позор!",
           "Подскажите, пожалуйста.", "Буду благодарна за ответ.",
           "Помогите, пожалуйста, разобраться.", "Прошу принять меры.", "Прошу разобраться.",
           "Прошу перезвонить.", "Прошу дать письменный ответ.", "Когда это исправят?",
           "Что делать?", "К кому обращаться?", "Куда звонить?", "Это вообще законно?",
           "Очень ждём.", "Помогите!"),
    details=("Обращаюсь уже {count_times}.", "Номер предыдущего обращения {ticket}.",
             "Ответа так и не получила.", "Прошу взять на контроль.", "Фото могу прислать.",
             "Это продолжается {period}.", "Звонила на горячую линию - без толку."),
    name_lines=("С уважением, {full_name}.", "{full_name}", "Меня зовут {first_name}.",
                "Заявитель: {full_name}, {addr}."),
    phone_lines=("Мой телефон {phone}.", "Перезвоните мне: {phone}", "тел. {phone}", "{phone}",
                 "Контактный номер {phone}, звоните после 18:00."),
    email_lines=("Ответ прошу направить на {email}.", "Почта для связи {email}", "{email}"),
    document_lines=("Номер карты {card}.", "СНИЛС {snils}.", "Паспорт {passport}.",
                    "Полис ОМС {oms}.", "Деньги списались с карты {card}."),
    stories=(
        "Ситуация тянется давно. Я уже обращалась {count_times}: и по телефону, и лично, и через "
        "сайт. Каждый раз мне обещают, что всё исправят в течение нескольких дней, номер "
        "обращения {ticket}, но ничего не происходит.",
        "Хочу отдельно отметить, что в нашем доме живут пожилые люди и семьи с маленькими "
        "детьми. Многие не могут сами ходить по инстанциям и ждать часами на линии, поэтому "
        "пишу от имени нескольких соседей.",
        "Когда я звонила в диспетчерскую, со мной разговаривали грубо, а потом просто "
        "положили трубку. Диспетчер сказала, что это не их зона ответственности, и "
        "посоветовала обратиться куда-нибудь ещё, не уточнив куда.",
        "Прошу рассмотреть обращение по существу, а не отправлять очередную отписку. Прошу "
        "сообщить, кто конкретно отвечает за решение вопроса и в какие сроки он будет решён, "
        "и дать ответ в письменном виде в установленный законом срок.",
        "В случае, если вопрос не будет решён, я буду вынуждена обратиться в жилищную "
        "инспекцию, прокуратуру и в приёмную губернатора. Копию обращения сохраняю.",
        "Для справки: проживаю по адресу {addr}, в квартире зарегистрированы {n} человека. "
        "Все платежи вносим вовремя, задолженности нет, квитанции сохраняем.",
        "Я понимаю, что у вас много обращений, но такое отношение к людям недопустимо. "
        "Раньше всё работало нормально, а в последние месяцы стало только хуже, и никто не "
        "объясняет причин.",
        "Отдельно прошу проверить, почему на прошлое обращение от {date} пришёл ответ, что "
        "«работы выполнены», хотя никто не приходил и ничего не делал. Соседи могут это "
        "подтвердить.",
    ),
    short_texts=("?", "??", "ок", "алло", "помогите", "здравствуйте", "..", "+", "да", "нет",
                 "1", "а", "ау", "Оператор", "спасибо", "!!!", "Добрый день"),
    example_frames=("{ex}", "{ex}", "{ex}", "{ex}?", "{ex}!", "Вопрос: {ex_l}",
                    "Подскажите, {ex_l}", "У меня проблема: {ex_l}", "{ex}. Что делать?",
                    "{ex}, помогите", "Обращаюсь по поводу: {ex_l}", "{ex}. Тема: {kw}",
                    "По вопросу «{kw}»: {ex_l}", "{ex}. И ещё: {ex2_l}"),
    fillers=("ну", "э-э", "алло", "да", "короче", "значит", "вот", "слушайте", "девушка"),
    connectors=("И ещё:", "Также", "Кстати,", "И заодно вопрос:", "Плюс ко всему", "А ещё"),
    follow_ups=("Ну что там с моей заявкой?", "Ответьте, пожалуйста!", "Я же писала выше",
                "Адрес: {addr}", "Мой телефон {phone}", "Фото прилагаю", "Когда будет ответ?",
                "Уточняю адрес: {addr}", "Всё ещё актуально", "Так и не решили", "Алло??",
                "Вы меня игнорируете?", "Дополняю: это уже не первый раз",
                "Номер обращения {ticket}", "И что мне делать?", "ок, жду", "опять то же самое",
                "Сегодня снова", "Есть новости?", "Сколько ждать ответа?"),
)

_ENGLISH = _Language.build(
    greetings=("Hello,", "Hi!", "Good afternoon.", "Dear team,", "Good morning"),
    sign_offs=("Thanks in advance.", "Thank you!", "Waiting for your answer.", "Regards."),
    intros=("I live at {flat} Baker Street.", "This is my second request.",
            "I am writing on behalf of my mother."),
    tails=("Please help.", "This is unacceptable!", "What should I do?",
           "How long will it take?", "Please call me back.", "Fix it ASAP!!"),
    details=("I have already written {n} times.", "Nobody answered my previous request.",
             "This has been going on for a week.", "Reference number {ticket}."),
    name_lines=("Regards, {en_name}.", "{en_name}", "My name is {en_name}."),
    phone_lines=("My phone: {phone}.", "Call me back at {phone}", "{phone}"),
    email_lines=("Please reply to {email}.", "{email}"),
    document_lines=("Card number {card}.", "My card {card} was charged."),
    stories=(
        "I have contacted you several times already, by phone and through the website, and "
        "every time I was promised that the problem would be solved within a few days. "
        "Nothing has happened so far and nobody has called me back.",
        "Please look into this properly instead of sending another template reply. I would "
        "like to know who exactly is responsible and by what date the issue will be resolved.",
        "If the problem is not solved I will have to file a formal complaint. I am keeping "
        "copies of all my messages and of your replies, including reference {ticket}.",
        "I understand you receive many requests, but this situation has lasted far too long "
        "and it affects my whole family, including elderly relatives and small children.",
    ),
    short_texts=("?", "ok", "hello", "help", "hi", "yes", "no", "..."),
    example_frames=("{ex}", "{ex}", "{ex}", "{ex}?", "{ex}!", "Question: {ex_l}", "Hi, {ex_l}",
                    "I have a problem: {ex_l}", "{ex}. What should I do?", "{ex}, please help",
                    "Regarding {kw}: {ex_l}", "{ex}. Also, {ex2_l}",
                    "Could you help? {ex}"),
    fillers=("uh", "well", "hello", "so", "um"),
    connectors=("Also,", "And", "By the way,", "One more thing:"),
    follow_ups=("Any update?", "Please answer!", "As I wrote above", "Still not fixed",
                "My reference is {ticket}", "ok, waiting", "Hello??", "Same again today"),
)

# fmt: on
_OTHER_SCRIPT = _Language.build(
    greetings=(),
    sign_offs=(),
    intros=(),
    tails=("?", "!", "!!", "..."),
    details=(),
    name_lines=(),
    phone_lines=("{phone}",),
    email_lines=("{email}",),
    document_lines=("{card}",),
    stories=(),
    short_texts=("?", "...", "!", "+"),
    example_frames=("{ex}", "{ex}", "{ex}?", "{ex}!", "{ex} ...", "{ex}. {ex2}", "{kw}: {ex}"),
    fillers=(),
    connectors=("+", "/"),
    follow_ups=("?", "??", "...", "{phone}"),
)

_SPAM = (
    "Buy cheap followers now!!! http://promo-best.xyz",
    "Hello, I am interested in your services. Please contact me.",
    "asdfghjkl",
    "qwerty123",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "Earn $5000 per week from home, write to t.me/easy_money_bot",
    "WIN A FREE IPHONE >>> bit.ly/3xFr33",
    "test test test",
    "你好，我需要帮助",
    "Guten Tag, ich habe eine Frage zu meiner Rechnung",
    "SELECT * FROM users; --",
    "<script>alert(1)</script>",
    "ЗАРАБОТОК ОТ 100000 В МЕСЯЦ! Пиши в телеграм @rich_fast",
    "Crypto investment 300% guaranteed!!! WhatsApp +44 7700 900123",
)
_EMPTY_TEXTS = ("", " ", "\n", "\t", "   ", " \n ")
# fmt: off
_EMOJI = ("😡", "🤬", "😤", "😢", "😭", "🙏", "👍", "🙂", "😊", "❗", "🔥", "💧", "❄️", "🚌", "🗑",
          "🏠", "🤦‍♀️", "👎", "😠", "🙏🙏")

# fmt: on
# --------------------------------------------------------------------------------------------
# Text damage
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]{3,}")
_TOKEN = re.compile(r"\S+")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_SENTENCE_PUNCT = re.compile(r"[.,!?;:«»\"()]")
_KEYWORD = re.compile(r"[^\W\d_]{5,}")


def _misspell(word: str, rng: random.Random) -> str:
    """One keyboard slip in a word (length >= 3): swap, drop, double or hit a neighbour key."""
    i = rng.randrange(1, len(word) - 1) if len(word) > 3 else rng.randrange(len(word) - 1)
    op = rng.randrange(4)
    if op == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i] + word[i:]
    neighbours = KEY_NEIGHBOURS.get(word[i].lower(), "")
    if op == 2 and neighbours:
        key = rng.choice(neighbours)
        return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]
    return word[:i] + word[i + 1 :]


def _add_typos(text: str, rng: random.Random) -> str:
    words = list(_WORD.finditer(text))
    if not words:
        return text
    count = min(len(words), 1 if rng.random() < 0.7 else rng.randint(2, 3))
    for match in sorted(rng.sample(words, count), key=lambda m: m.start(), reverse=True):
        text = text[: match.start()] + _misspell(match.group(), rng) + text[match.end() :]
    return text


def _wrong_layout(text: str, rng: random.Random) -> str:
    """The first words (or all) typed with the Latin layout on: "ytn djls" for "нет воды".
    Only Russian text has a second layout to slip into; other text is returned unchanged."""
    tokens = list(_TOKEN.finditer(text))
    if not tokens or not _CYRILLIC.search(text):
        return text
    if rng.random() < 0.25:
        return to_latin_layout(text)
    end = tokens[min(len(tokens), rng.randint(1, 3)) - 1].end()
    return to_latin_layout(text[:end]) + text[end:]


def _mixed_case(text: str, rng: random.Random) -> str:
    """Caps Lock held with Shift ("нЕТ ВОДЫ") or a few shouted words."""
    if rng.random() < 0.4:
        return text.swapcase()
    return " ".join(w.upper() if rng.random() < 0.35 else w for w in text.split(" "))


def _add_emoji(text: str, rng: random.Random) -> str:
    emoji = "".join(rng.choice(_EMOJI) for _ in range(rng.choice((1, 1, 1, 2, 3))))
    where = rng.random()
    if where < 0.7:
        return text + rng.choice((" ", "", " ")) + emoji
    if where < 0.85:
        return emoji + " " + text
    words = text.split(" ")
    words.insert(rng.randrange(len(words) + 1), emoji)
    return " ".join(words)


def _mess_whitespace(text: str, rng: random.Random) -> str:
    """Stray whitespace a normaliser must remove: edges, runs of spaces, tabs, CR."""
    op = rng.randrange(5)
    if op == 0:
        return rng.choice(("  ", "\n", " \t", "   ")) + text
    if op == 1:
        return text + rng.choice(("  ", "\n", "\n\n", " \t", "\r\n"))
    if op == 2:
        return text.replace(" ", "  ") if rng.random() < 0.5 else text.replace(" ", "   ", 2)
    if op == 3:
        return text.replace(" ", "\t", 1) if " " in text else "\t" + text
    return text.replace(". ", ".\r\n") if ". " in text else text + "\r\n"


def _transcribe(text: str, rng: random.Random, language: _Language) -> str:
    """What a speech recogniser makes of a call: lower case, no punctuation, fillers."""
    words = _SENTENCE_PUNCT.sub(" ", text.lower()).split()
    if language.fillers and rng.random() < 0.6:
        words.insert(0, rng.choice(language.fillers))
    if language.fillers and len(words) > 4 and rng.random() < 0.3:
        words.insert(rng.randrange(1, len(words)), rng.choice(language.fillers))
    return " ".join(words)


def _near_variant(text: str, rng: random.Random) -> str:
    """The same message resent with a different case, punctuation or spacing."""
    variants = (
        text.lower(),
        text.upper(),
        text[:1].swapcase() + text[1:],
        text.rstrip(".!?") if text.rstrip(".!?") != text else text + rng.choice(("!", "?", "!!")),
        text.replace(",", ""),
        text.replace(" ", "  ", 1),
        text + " ",
        text + "...",
    )
    for variant in rng.sample(variants, len(variants)):
        if variant != text and variant.strip():
            return variant
    return text + "!"


# --------------------------------------------------------------------------------------------
# Domain banks
# --------------------------------------------------------------------------------------------

_LANGUAGES: dict[str, _Language] = {"ru": _RUSSIAN, "en": _ENGLISH, "other": _OTHER_SCRIPT}
_RU_BANK = {domain: _parse_all(texts) for domain, texts in _RU_TEMPLATES.items()}
_RU_DETAIL_BANK = {domain: _parse_all(texts) for domain, texts in _RU_DETAILS.items()}
_EXAMPLE_SHARE_WITH_TEMPLATES = 0.15
_BORDERLINE_SHARE = 0.15


@dataclass(frozen=True)
class _DomainBank:
    """What one taxonomy domain's messages are made of."""

    domain_id: str
    language: _Language
    templates: tuple[_Template, ...]
    details: tuple[_Template, ...]
    examples: tuple[str, ...]
    keywords: tuple[str, ...]
    borderline: tuple[_Template, ...]
    neighbours: tuple[int, ...]  # positions in the taxonomy of domains a message may add

    def core(self, rng: random.Random) -> str:
        """The message's own content: a filled template (sometimes one shared with a
        neighbouring domain), or a framed taxonomy example."""
        if self.borderline and rng.random() < _BORDERLINE_SHARE:
            return rng.choice(self.borderline).render(rng)
        if self.templates and (not self.examples or rng.random() > _EXAMPLE_SHARE_WITH_TEMPLATES):
            return rng.choice(self.templates).render(rng)
        example, other = rng.choice(self.examples), rng.choice(self.examples)
        return rng.choice(self.language.example_frames).format(
            ex=example,
            ex_l=_lower_first(example),
            ex2=other,
            ex2_l=_lower_first(other),
            kw=rng.choice(self.keywords) if self.keywords else example,
        )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _language_of(domain: Domain) -> str:
    sample = " ".join([domain.name, domain.description, *domain.examples])
    cyrillic, latin = len(_CYRILLIC.findall(sample)), len(_LATIN.findall(sample))
    if cyrillic > latin:
        return "ru"
    return "en" if latin > 0 else "other"


def _description_phrases(domain: Domain) -> tuple[str, ...]:
    """Clauses of the description ("горячая и холодная вода") to stand in for examples."""
    clauses = (c.strip() for c in re.split(r"[.;,:()]", domain.description))
    return tuple(c for c in clauses if len(c.split()) >= 2)


def _bank_id(domain: Domain) -> str | None:
    """The Russian template bank a domain uses, if any (only for a domain written in Russian)."""
    bank_id = "other" if domain.id in OTHER_DOMAIN_IDS else domain.id
    return bank_id if _language_of(domain) == "ru" and bank_id in _RU_BANK else None


def _domain_banks(taxonomy: Taxonomy) -> list[_DomainBank]:
    """One bank per taxonomy domain, in taxonomy order. Borderline templates and neighbours
    are limited to domains this taxonomy has, so every label stays a taxonomy id."""
    bank_ids = [_bank_id(d) for d in taxonomy.domains]
    position = {bank_id: i for i, bank_id in enumerate(bank_ids) if bank_id}
    languages = [_language_of(d) for d in taxonomy.domains]
    banks = []
    for i, domain in enumerate(taxonomy.domains):
        bank_id = bank_ids[i]
        if bank_id:
            borderline = tuple(
                _Template.parse(text)
                for a, b, text in _RU_BORDERLINE
                if bank_id in (a, b) and {a, b} <= position.keys()
            )
            neighbours = tuple(position[r] for r in _RELATED.get(bank_id, ()) if r in position)
        else:
            borderline = ()
            neighbours = tuple(
                j
                for j, other in enumerate(taxonomy.domains)
                if j != i and languages[j] == languages[i] and other.id != taxonomy.other_id
            )
        examples = tuple(domain.examples) or _description_phrases(domain) or (domain.name,)
        keywords = f"{domain.name} {domain.description}"
        banks.append(
            _DomainBank(
                domain_id=domain.id,
                language=_LANGUAGES[languages[i]],
                templates=_RU_BANK[bank_id] if bank_id else (),
                details=_RU_DETAIL_BANK.get(bank_id, ()) if bank_id else (),
                examples=examples,
                keywords=tuple(dict.fromkeys(w.lower() for w in _KEYWORD.findall(keywords))),
                borderline=borderline,
                neighbours=neighbours if domain.id != taxonomy.other_id else (),
            )
        )
    return banks


def domain_weights(taxonomy: Taxonomy) -> dict[str, float]:
    """Share of messages per domain of `taxonomy` (sums to 1), in taxonomy order.

    Ids in `SAMPLE_DOMAIN_WEIGHTS` keep their weight (an out-of-scope id takes "other"'s);
    the k-th unlisted id gets `_UNLISTED_DOMAIN_WEIGHT / (1 + k)`.
    """
    raw: dict[str, float] = {}
    unlisted = 0
    for domain in taxonomy.domains:
        key = "other" if domain.id in OTHER_DOMAIN_IDS else domain.id
        if key in SAMPLE_DOMAIN_WEIGHTS:
            raw[domain.id] = SAMPLE_DOMAIN_WEIGHTS[key]
        else:
            raw[domain.id] = _UNLISTED_DOMAIN_WEIGHT / (1 + unlisted)
            unlisted += 1
    total = sum(raw.values())
    return {domain_id: weight / total for domain_id, weight in raw.items()}


# --------------------------------------------------------------------------------------------
# Row composition
# --------------------------------------------------------------------------------------------


def _optional(templates: Sequence[_Template], probability: float, rng: random.Random) -> list[str]:
    if templates and rng.random() < probability:
        return [rng.choice(templates).render(rng)]
    return []


def _ordinary_text(
    bank: _DomainBank,
    secondary: _DomainBank | None,
    flags: Mapping[str, bool],
    transcript: bool,
    rng: random.Random,
) -> str:
    """A typical message: [greeting] [name] [intro] core [detail] [second topic] [tail]
    [phone/e-mail/document] [sign-off] [name], then transcribed or naturally sloppy."""
    lang = bank.language
    name_first = flags["name"] and rng.random() < 0.3
    parts: list[str] = []
    if flags["greeting"] and lang.greetings:
        parts.append(rng.choice(lang.greetings).render(rng))
    core = bank.core(rng)
    if name_first:
        parts += _optional(lang.name_lines, 1.0, rng)
    parts += _optional(lang.intros, 0.12, rng)
    parts.append(_lower_first(core) if parts and parts[-1].endswith(",") else core)
    parts += _optional(bank.details if rng.random() < 0.7 else lang.details, 0.3, rng)
    if secondary is not None:
        parts += [rng.choice(lang.connectors), _lower_first(secondary.core(rng))]
    parts += _optional(lang.tails, 0.35, rng)
    for flag, lines in (
        ("phone", lang.phone_lines),
        ("email", lang.email_lines),
        ("document_number", lang.document_lines),
    ):
        if flags[flag]:
            parts += _optional(lines, 1.0, rng)
    if flags["sign_off"] and lang.sign_offs:
        parts.append(rng.choice(lang.sign_offs).render(rng))
    if flags["name"] and not name_first:
        parts += _optional(lang.name_lines, 1.0, rng)
    text = " ".join(parts)
    return _transcribe(text, rng, lang) if transcript else _natural_style(text, rng)


def _natural_style(text: str, rng: random.Random) -> str:
    """How people type without meaning to make a mess: lower case, no final stop, е for ё."""
    roll = rng.random()
    if roll < 0.12:
        text = text.lower()
    elif roll < 0.35:
        text = _lower_first(text)
    if rng.random() < 0.3:
        text = text.rstrip(".")
    if rng.random() < 0.5:
        text = text.replace("ё", "е")
    return text


def _long_text(bank: _DomainBank, rng: random.Random) -> str:
    """A multi-paragraph complaint of well over 1000 characters."""
    lang = bank.language
    paragraphs = [bank.core(rng)]
    paragraphs += [t.render(rng) for t in rng.sample(bank.details, min(2, len(bank.details)))]
    fillers = [t.render(rng) for t in lang.stories] or list(bank.examples)
    target = 1000 + rng.randint(50, 900)
    order = rng.sample(fillers, len(fillers))
    i = 0
    while sum(len(p) + 2 for p in paragraphs) < target:
        paragraphs.append(order[i % len(order)])
        i += 1
    if lang.greetings:
        paragraphs.insert(0, rng.choice(lang.greetings).render(rng))
    paragraphs += _optional(lang.name_lines, 0.7, rng)
    return "\n\n".join(paragraphs)


def _damage(text: str, flags: Mapping[str, bool], transcript: bool, rng: random.Random) -> str:
    if flags["typo"]:
        text = _add_typos(text, rng)
    if not transcript:
        if flags["caps"]:
            text = text.upper()
        elif flags["mixed_case"]:
            text = _mixed_case(text, rng)
        if flags["wrong_layout"]:
            text = _wrong_layout(text, rng)
        if flags["emoji"]:
            text = _add_emoji(text, rng)
    if flags["whitespace"]:
        text = _mess_whitespace(text, rng)
    return text


def _row_text(
    kind: str,
    bank: _DomainBank,
    secondary: _DomainBank | None,
    flags: Mapping[str, bool],
    transcript: bool,
    rng: random.Random,
) -> str:
    if kind == "empty":
        return rng.choice(_EMPTY_TEXTS)
    if kind == "very_short":
        return rng.choice(bank.language.short_texts)
    if kind == "spam":
        return rng.choice(_SPAM)
    if kind == "long":
        return _long_text(bank, rng)
    text = _ordinary_text(bank, secondary, flags, transcript, rng)
    return _damage(text, flags, transcript, rng)


# --------------------------------------------------------------------------------------------
# Vectorised draws
# --------------------------------------------------------------------------------------------


def _draw_timestamps(rng: np.random.Generator, n: int, start: date, days: int) -> np.ndarray:
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


def _draw_users(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _session_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"s{v:012x}" for v in rng.integers(0, 2**48, size=n).tolist()], dtype=object)


def _draw_kinds(rng: np.random.Generator, n: int) -> np.ndarray:
    special = [MESS_RATES[kind] for kind in _ROW_KINDS[1:]]
    p = np.array([1.0 - sum(special), *special])
    return rng.choice(len(_ROW_KINDS), size=n, p=p)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------

_COLUMNS = ("text", "ts", "user_id", "channel", "region", "session_id", "true_domain")
_LATER_KINDS = ("exact_duplicate", "near_duplicate", "follow_up")
_LATER_DELAY_S = {
    "exact_duplicate": (30, 1_800),  # an impatient resubmission: within half an hour
    "near_duplicate": (120, 6 * 3_600),
    "follow_up": (60, 3 * 3_600),
}
_MIN_DUPLICATED_LENGTH = 10


def generate_logs(
    taxonomy: Taxonomy,
    *,
    n_rows: int = 6000,
    start_date: date = date(2026, 11, 1),
    days: int = 7,
    seed: int = 42,
    planted_pii: bool = False,
) -> pd.DataFrame:
    """`n_rows` realistic contact-centre messages over `days` days from `start_date` (UTC).

    Columns: `text`, `ts` (datetime64[ns, UTC], sorted), `user_id`, `channel`, `region`,
    `session_id`, `true_domain`. `true_domain` is ground truth for benchmarks and tests only -
    drop it before inserting into `esk_logs`; real logs have no such column.
    With `planted_pii`, a `planted_pii` column lists the personal data written into each text
    as (kind, value) pairs (kinds in `PII_KINDS`; the value as generated, before any typo or
    transcription damage): ground truth as well. Same arguments, same frame (and the same
    texts with or without the column).
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    np_rng = np.random.default_rng(seed)
    text_rng = random.Random(seed)
    banks = _domain_banks(taxonomy)
    weights = domain_weights(taxonomy)
    fallback_id = taxonomy.other_id

    later_counts = {kind: round(n_rows * MESS_RATES[kind]) for kind in _LATER_KINDS}
    n_base = n_rows - sum(later_counts.values())

    domain_index = np_rng.choice(len(banks), size=n_base, p=[weights[b.domain_id] for b in banks])
    kinds = _draw_kinds(np_rng, n_base).tolist()
    flag_matrix = np.column_stack(
        [np_rng.random(n_base) < MESS_RATES[flag] for flag in _FLAGS]
    ).tolist()
    ts = _draw_timestamps(np_rng, n_base, start_date, days)
    user_ids, channels, regions = _draw_users(np_rng, n_base)
    sessions = _session_ids(np_rng, n_base)

    texts: list[str] = []
    true_domains: list[str] = []
    planted: list[list[tuple[str, str]]] = []
    for i, bank_i in enumerate(domain_index.tolist()):
        bank, kind = banks[bank_i], _ROW_KINDS[kinds[i]]
        flags = dict(zip(_FLAGS, flag_matrix[i], strict=True))
        transcript = channels[i] == "phone_transcript"
        secondary = (
            banks[text_rng.choice(bank.neighbours)]
            if flags["multi_topic"] and bank.neighbours
            else None
        )
        texts.append(
            _recording(planted if planted_pii else None, _row_text)(
                kind, bank, secondary, flags, transcript, text_rng
            )
        )
        off_topic = kind in ("empty", "very_short", "spam") and fallback_id is not None
        true_domains.append(fallback_id if off_topic else bank.domain_id)

    base = pd.DataFrame(
        {
            "text": pd.Series(texts, dtype=object),
            "ts": ts,
            "user_id": user_ids,
            "channel": channels,
            "region": regions,
            "session_id": sessions,
            "true_domain": pd.Series(true_domains, dtype=object),
        }
    )
    if planted_pii:
        base["planted_pii"] = pd.Series(planted, dtype=object)
    languages = [banks[i].language for i in domain_index.tolist()]
    later = _later_messages(base, languages, later_counts, np_rng, text_rng, start_date, days)
    frame = pd.concat([base, *later], ignore_index=True)
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
    columns = [*_COLUMNS, "planted_pii"] if planted_pii else list(_COLUMNS)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)[columns]


def _recording(
    into: list[list[tuple[str, str]]] | None, render: Callable[..., str]
) -> Callable[..., str]:
    """`render`, noting the PII it plants into a new entry of `into` (when a list is given)."""
    if into is None:
        return render

    def rendered(*args: object) -> str:
        token = _PLANTED.set([])
        try:
            return render(*args)
        finally:
            into.append(_PLANTED.get() or [])
            _PLANTED.reset(token)

    return rendered


def _later_messages(
    base: pd.DataFrame,
    languages: Sequence[_Language],
    counts: Mapping[str, int],
    np_rng: np.random.Generator,
    text_rng: random.Random,
    start: date,
    days: int,
) -> list[pd.DataFrame]:
    """Messages the authors of substantive base rows send later: exact resubmissions (same
    session, minutes later), near copies (new session, hours later) and contentless chat
    follow-ups (same session, same true domain - only the conversation tells what they are)."""
    eligible = np.flatnonzero(base["text"].str.strip().str.len() >= _MIN_DUPLICATED_LENGTH)
    if not len(eligible):
        return []
    last_ns = (
        int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) + days * 86_400
    ) * 1_000_000_000 - 1
    messages = []
    for kind in _LATER_KINDS:
        picked = np_rng.choice(eligible, size=counts[kind])
        rows = base.iloc[picked].copy()
        low, high = _LATER_DELAY_S[kind]
        resent = rows["ts"].to_numpy() + np_rng.integers(low, high, size=len(rows)) * 10**9
        rows["ts"] = np.where(resent <= last_ns, resent, rows["ts"].to_numpy())
        if kind == "near_duplicate":
            rows["text"] = [_near_variant(t, text_rng) for t in rows["text"].tolist()]
            rows["session_id"] = _session_ids(np_rng, len(rows))
        elif kind == "follow_up":
            planted: list[list[tuple[str, str]]] | None = (
                [] if "planted_pii" in rows.columns else None
            )
            rows["text"] = [
                _recording(planted, _follow_up)(
                    languages[i], channel == "phone_transcript", text_rng
                )
                for i, channel in zip(picked.tolist(), rows["channel"].tolist(), strict=True)
            ]
            if planted is not None:
                rows["planted_pii"] = pd.Series(planted, index=rows.index, dtype=object)
        messages.append(rows)
    return messages


def _follow_up(language: _Language, transcript: bool, rng: random.Random) -> str:
    text = rng.choice(language.follow_ups).render(rng)
    return _transcribe(text, rng, language) if transcript else _natural_style(text, rng)
