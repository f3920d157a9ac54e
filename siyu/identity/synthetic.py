"""A synthetic customer population with ground truth, to measure what identity resolution gets right.

It has what breaks naive merging in Chinese private-domain data: several devices per person,
family tablets shared by a household (each member logs in on it, the kids browse anonymously),
typos in phone numbers and e-mails, phone numbers recycled by the carrier to a new owner later,
one WeChat unionid with an openid in each of the brand's apps, SDK junk ('null', an all-zero
IDFA), and phone numbers spelt every which way. Deterministic for a given seed.
"""

from __future__ import annotations

import bisect
import random
import string
from dataclasses import dataclass, field

APPS = ("wxmp01", "wxmini02", "wxapp03")
JUNK = (("member_id", "null"), ("device_id", "00000000-0000-0000-0000-000000000000"), ("visitor_cookie", "undefined"))
MOBILE_PREFIXES = ("13", "15", "17", "18", "19")


@dataclass
class Record:
    ref: str
    person: int  # ground truth
    kind: str
    identifiers: list[tuple[str, str]]
    at: float = 0.0


@dataclass
class Device:
    device_id: str
    cookies: list[str]


@dataclass
class Person:
    id: int
    start: float
    end: float
    phone: str | None = None
    email: str | None = None
    member_id: str | None = None
    unionid: str | None = None
    openids: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    tablet: Device | None = None  # the household's shared device, if any


@dataclass
class Population:
    records: list[Record]
    people: list[Person]
    recycled: int = 0
    households_sharing: int = 0

    @property
    def truth(self) -> list[int]:
        return [r.person for r in self.records]

    @property
    def identifiers(self) -> list[list[tuple[str, str]]]:
        return [r.identifiers for r in self.records]


def generate(
    people: int = 2000,
    seed: int = 7,
    typo_rate: float = 0.03,
    recycle_rate: float = 0.02,
    tablet_rate: float = 0.3,
    junk_rate: float = 0.02,
) -> Population:
    rng = random.Random(seed)
    used_phones: set[str] = set()
    persons = [_person(rng, i, used_phones) for i in range(people)]
    recycled = _recycle_phones(rng, persons, recycle_rate)
    sharing = _households(rng, persons, tablet_rate)
    records: list[Record] = []
    for p in persons:
        records.extend(_events(rng, p, typo_rate, junk_rate))
    records.sort(key=lambda r: (r.at, r.person, r.kind))
    for i, r in enumerate(records):
        r.ref = f"ev{i:07d}"
    return Population(records, persons, recycled, sharing)


def _token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits + "-_") -> str:
    return "".join(rng.choices(alphabet, k=n))


def _mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        number = rng.choice(MOBILE_PREFIXES) + "".join(rng.choices(string.digits, k=9))
        if number not in used and len(set(number[2:])) > 2:
            used.add(number)
            return number


def _spell_phone(rng: random.Random, n: str) -> str:
    """The ways people and forms write one mainland mobile number."""
    return rng.choice((n, f"{n[:3]} {n[3:7]} {n[7:]}", f"+86 {n[:3]}-{n[3:7]}-{n[7:]}", f"0086{n}", f"+86{n}"))


def _device(rng: random.Random) -> Device:
    hexes = "0123456789abcdef"
    raw = "-".join(_token(rng, n, hexes) for n in (8, 4, 4, 4, 12))
    return Device(raw.upper() if rng.random() < 0.5 else raw, [_token(rng, 16) for _ in range(rng.choice((1, 1, 2)))])


def _person(rng: random.Random, i: int, used: set[str]) -> Person:
    start = rng.uniform(0, 1000)
    p = Person(i, start, start + rng.uniform(60, 400))
    if rng.random() < 0.9:
        p.phone = _mobile(rng, used)
    if rng.random() < 0.5:
        name = rng.choice(("li", "wang", "zhang", "liu", "chen")) + "." + _token(rng, 5, string.ascii_lowercase)
        p.email = f"{name}{i}@" + rng.choice(("qq.com", "163.com", "126.com", "gmail.com", "foxmail.com"))
    if rng.random() < 0.6:
        p.member_id = f"M{100000 + i}"
    if rng.random() < 0.7:
        p.unionid = "oU" + _token(rng, 26)
        p.openids = [f"{app}:o{_token(rng, 27)}" for app in rng.sample(APPS, rng.choice((1, 1, 2, 3)))]
    p.devices = [_device(rng) for _ in range(1 + (rng.random() < 0.5) + (rng.random() < 0.2))]
    return p


def _recycle_phones(rng: random.Random, persons: list[Person], rate: float) -> int:
    """Carriers re-issue a number some months after its owner gave it up: a later person gets it."""
    count = 0
    by_start = sorted((p for p in persons if p.phone), key=lambda p: p.start)
    starts = [p.start for p in by_start]
    for old in by_start:
        if rng.random() >= rate:
            continue
        first_later = bisect.bisect_right(starts, old.end + 90)
        if first_later < len(by_start):
            new = by_start[rng.randrange(first_later, len(by_start))]
            new.phone = old.phone
            count += 1
    return count


def _households(rng: random.Random, persons: list[Person], rate: float) -> int:
    """Group people into households of 1–4; some share a tablet that everyone in it uses."""
    order = persons[:]
    rng.shuffle(order)
    sharing = 0
    i = 0
    while i < len(order):
        size = rng.choices((1, 2, 3, 4), weights=(50, 25, 15, 10))[0]
        home = order[i : i + size]
        i += size
        if len(home) > 1 and rng.random() < rate:
            tablet = _device(rng)
            for p in home:
                p.tablet = tablet
            sharing += 1
    return sharing


def _typo_phone(rng: random.Random, n: str) -> str:
    pos = rng.randrange(3, 11)
    return n[:pos] + rng.choice([d for d in string.digits if d != n[pos]]) + n[pos + 1 :]


def _typo_email(rng: random.Random, e: str) -> str:
    local, _, domain = e.partition("@")
    pos = rng.randrange(len(local) - 1)
    return local[:pos] + local[pos + 1] + local[pos] + local[pos + 2 :] + "@" + domain


def _events(rng: random.Random, p: Person, typo_rate: float, junk_rate: float) -> list[Record]:
    out: list[Record] = []

    def phone() -> list[tuple[str, str]]:
        if not p.phone:
            return []
        n = _typo_phone(rng, p.phone) if rng.random() < typo_rate else p.phone
        return [("phone", _spell_phone(rng, n))]

    def email() -> list[tuple[str, str]]:
        if not p.email:
            return []
        e = _typo_email(rng, p.email) if rng.random() < typo_rate else p.email
        return [("email", e.title() if rng.random() < 0.2 else e)]

    def add(kind: str, at: float, ids: list[tuple[str, str]]) -> None:
        if rng.random() < junk_rate:
            ids = [*ids, rng.choice(JUNK)]
        if ids:
            out.append(Record("", p.id, kind, ids, at))

    home = p.devices[0]
    # Sign-up: what the person gives the brand, on their main device.
    add(
        "signup",
        p.start,
        [*phone(), *email(), *_member(p), ("device_id", home.device_id), ("visitor_cookie", home.cookies[0])],
    )
    for _ in range(rng.randint(3, 14)):
        at = rng.uniform(p.start, p.end)
        on_tablet = p.tablet is not None and rng.random() < 0.3
        dev = p.tablet if on_tablet else rng.choice(p.devices)
        cookie = ("visitor_cookie", rng.choice(dev.cookies))
        kind = rng.choices(("click", "app", "login", "wechat", "sms"), weights=(30, 20, 20, 20, 10))[0]
        if kind == "click":
            add(kind, at, [cookie])
        elif kind == "app":
            logged_in = _member(p) if rng.random() < 0.6 else []
            add(kind, at, [*logged_in, ("device_id", dev.device_id)])
        elif kind == "login":
            who = _member(p) or phone() or email()
            add(kind, at, [*who, cookie, ("device_id", dev.device_id)])
        elif kind == "wechat" and p.openids and not on_tablet:
            ids = [("openid", rng.choice(p.openids)), cookie]
            if rng.random() < 0.8:
                ids.append(("unionid", p.unionid))
            add(kind, at, ids)
        elif kind == "sms" and p.phone:
            add(kind, at, [*phone(), cookie])
        else:
            add("click", at, [cookie])
    return out


def _member(p: Person) -> list[tuple[str, str]]:
    return [("member_id", p.member_id)] if p.member_id else []
