"""Slot fillers: "{name}" in a template is replaced by `SLOTS[name](rng)`.

A trailing digit ("{reading2}") asks for a second independent value of the same slot. Word
lists and the layouts of addresses, phones, names and dodged e-mails come from the template
file (`data.sample_templates()`); every filler draws from the `random.Random` it is given.

Fillers that write personal data note what they planted (kind, value) while
`recording(into, render)` runs, as ground truth for the PII benchmark
(`generate_logs(planted_pii=True)`); noting draws nothing, so the texts stay the same.
"""

from __future__ import annotations

import random
import string
import zlib
from collections.abc import Callable, Sequence
from contextvars import ContextVar

from esk_pipeline.sample_data._data import sample_templates
from esk_pipeline.sample_data._draws import REGIONS

PII_KINDS = ("email", "phone", "card", "snils", "passport", "oms", "account", "flat", "name")

_DATA = sample_templates()
_WORDS: dict[str, tuple[str, ...]] = _DATA["words"]
_LAYOUTS: dict[str, tuple[str, ...]] = _DATA["layouts"]
_STREETS: tuple[tuple[str, str], ...] = _DATA["streets"]
_MONTHS: tuple[tuple[str, str, str], ...] = _DATA["months"]  # nominative, prepositional, genitive
_MALE_FIRST: tuple[str, ...] = _DATA["male_first_names"]
_FEMALE_FIRST: tuple[str, ...] = _DATA["female_first_names"]
_SURNAMES: tuple[str, ...] = _DATA["surnames"]
_FATHER_NAMES: tuple[str, ...] = _DATA["father_names"]
_EMAIL_HANDLES: tuple[str, ...] = _DATA["email_handles"]
_EMAIL_HOSTS: tuple[str, ...] = _DATA["email_hosts"]

# The personal data planted in the row being written, (kind, value) in order, while a
# `recording` render runs.
_PLANTED: ContextVar[list[tuple[str, str]] | None] = ContextVar("planted_pii", default=None)


def recording(
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


def _note(kind: str, value: str) -> str:
    planted = _PLANTED.get()
    if planted is not None:
        planted.append((kind, value))
    return value


def _planted(kind: str, fill: Callable[[random.Random], str]) -> Callable[[random.Random], str]:
    """A slot filler that notes what it planted (it draws exactly what `fill` draws)."""
    return lambda rng: _note(kind, fill(rng))


def _pick(values: Sequence[str]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(values)


def _layout(kind: str, rng: random.Random) -> str:
    """One of the template file's layouts of `kind`, drawn uniformly."""
    layouts = _LAYOUTS[kind]
    return layouts[rng.randrange(len(layouts))]


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
    layout = _layout("address", rng)
    if "{flat}" in layout:
        _note("flat", str(flat))
    town = rng.choice(REGIONS) if "{town}" in layout else ""
    return layout.format(kind=kind, name=name, house=house, flat=flat, town=town)


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
    return _layout("full_name", rng).format(surname=surname, first=first, patronymic=patronymic)


def _first_name(rng: random.Random) -> str:
    return rng.choice(_FEMALE_FIRST if rng.random() < 0.6 else _MALE_FIRST)


def _phone(rng: random.Random) -> str:
    code = rng.choice(("916", "903", "925", "926", "985", "977", "999", "915", "495", "498"))
    a, b, c = rng.randint(100, 999), rng.randint(0, 99), rng.randint(0, 99)
    return _layout("phone", rng).format(code=code, a=a, b=b, c=c)


def _email(rng: random.Random) -> str:
    """An address, sometimes written the way people dodge spam bots or dictate it: "собака"
    or "(at)" for the @, spaces around it, a space for the dot. The style follows from the
    address itself (no extra draw, so the rest of the generated data stays as it was)."""
    number = rng.choice(("", "", str(rng.randint(1, 99)), str(rng.randint(1950, 2010))))
    handle = f"{rng.choice(_EMAIL_HANDLES)}{number}"
    host = rng.choice(_EMAIL_HOSTS)
    style = zlib.crc32(f"{handle}@{host}".encode()) % 10  # styles past the dodges: plain
    dodges = _LAYOUTS["dodged_email"]
    layout = dodges[style] if style < len(dodges) else "{handle}@{host}"
    return layout.format(handle=handle, host=host, spaced_host=host.replace(".", " "))


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


def _date(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{rng.randint(1, 28)} {rng.choice(_MONTHS)[2]}",
            f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}",
            f"{rng.randint(1, 28)}-го числа",
        )
    )


def _reading(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{rng.randint(0, 99999):05d}",
            str(rng.randint(10, 9999)),
            f"{rng.randint(10, 999)},{rng.randint(0, 999):03d}",
        )
    )


def _ticket(rng: random.Random) -> str:
    return rng.choice((f"№{_digits(rng, 7)}", f"№ {_digits(rng, 8)}", f"2026-{_digits(rng, 6)}"))


def _bus(rng: random.Random) -> str:
    return rng.choice(
        (
            str(rng.randint(1, 99)),
            str(rng.randint(100, 1199)),
            f"{rng.randint(1, 60)}к",
            f"т{rng.randint(1, 40)}",
            f"м{rng.randint(1, 15)}",
        )
    )


def _number(low: int, high: int) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randint(low, high))


SLOTS: dict[str, Callable[[random.Random], str]] = {
    **{slot: _pick(words) for slot, words in _WORDS.items()},
    "addr": _address,
    "street": _street,
    "house": _house,
    "flat": _planted("flat", _number(1, 320)),
    "floor": _number(2, 17),
    "entrance": _number(1, 8),
    "n": _number(2, 4),
    "town": _pick(REGIONS),
    "month": lambda rng: rng.choice(_MONTHS)[0],
    "month_prep": lambda rng: rng.choice(_MONTHS)[1],
    "month_gen": lambda rng: rng.choice(_MONTHS)[2],
    "date": _date,
    "sum": _money,
    "reading": _reading,
    "ls": _planted("account", lambda rng: _digits(rng, 10)),
    "ticket": _ticket,
    "bus": _bus,
    "tram": _number(1, 45),
    "clinic_num": _number(1, 230),
    "school_num": _number(1, 45),
    "kg_num": _number(1, 120),
    "plate": _plate,
    "full_name": _planted("name", _full_name),
    "first_name": _planted("name", _first_name),
    "en_name": _planted("name", _pick(_DATA["english_names"])),
    "phone": _planted("phone", _phone),
    "email": _planted("email", _email),
    "card": _planted("card", _card),
    "snils": _planted("snils", _snils),
    "passport": _planted("passport", _passport),
    "oms": _planted("oms", lambda rng: _digits(rng, 16)),
}
