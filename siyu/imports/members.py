"""Members (会员) → Segment `identify` calls: userId = member_id, the rest as traits, consent in context.

Traits follow Segment's reserved names where one exists (name, gender, birthday, phone, email,
createdAt, address.city); the CRM's own fields keep theirs (level, points, store, unionid, openid +
appid). `consent_<purpose>` columns (granted/denied, 1/0, 是/否) become Segment's consent object
`context.consent.categoryPreferences`, `consent_evidence` its evidence.

The message id hashes the member id *and the content*: the same row again is recognised as stored,
a corrected row is a new identify (timestamped `updated_at`, or the import time) that supersedes it.
"""

from __future__ import annotations

import re
from datetime import datetime

from siyu.imports import values
from siyu.imports.plan import LIBRARY, Cells, Issues, Kind, Planned, compact, digest
from siyu.imports.reader import Record, scalar
from siyu.imports.report import Issue

COLUMNS = (
    "member_id",
    "phone",
    "email",
    "unionid",
    "openid",
    "appid",
    "name",
    "gender",
    "birthday",
    "city",
    "level",
    "points",
    "registered_at",
    "store",
    "updated_at",
    "consent_evidence",
    "consent",  # JSONL only: {"marketing": true, ...} as well as, or instead of, consent_<purpose> keys
)
CONSENT_PREFIX = "consent_"
PURPOSE_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def consent_column(name: str) -> bool | Issue:
    if not name.startswith(CONSENT_PREFIX) or name == "consent_evidence":
        return False
    purpose = name.removeprefix(CONSENT_PREFIX)
    if PURPOSE_RE.match(purpose):
        return True
    return Issue(
        1,
        name,
        "is not a consent purpose column: consent_ then a purpose code (lower-case letters, digits, _)",
        "import_consent_column",
    )


def _consents(cells: Cells) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for name in cells.cells:
        if name.startswith(CONSENT_PREFIX) and consent_column(name) is True:
            granted = cells.get(name, values.consent)
            if granted is not None:
                out[name.removeprefix(CONSENT_PREFIX)] = granted
    nested = cells.cells.get("consent")
    if isinstance(nested, dict):  # JSONL: {"consent": {"marketing": true}}
        sub = Cells({str(k): scalar(v) for k, v in nested.items()}, cells.row, cells.issues, "consent.")
        for purpose in sub.cells:
            if not PURPOSE_RE.match(purpose):
                sub.error(purpose, "is not a purpose code (lower-case letters, digits, _)", "import_consent_purpose")
                continue
            granted = sub.get(purpose, values.consent)
            if granted is not None:
                out[purpose] = granted
        cells.ok = cells.ok and sub.ok
    elif nested not in (None, ""):
        cells.error("consent", "must be an object of purpose: granted/denied", "import_consent_object")
    return out


def build(records: list[Record], issues: Issues, now: datetime, fmt: str) -> list[Planned]:
    planned: list[Planned] = []
    for record in records:
        c = Cells(record.values, record.row, issues)
        member_id = c.get("member_id", values.identifier, required=True)
        openid, appid = c.get("openid", values.identifier), c.get("appid", values.ident)
        if openid and not appid:
            c.error("appid", "is required with openid: an openid is only unique within its app", "import_openid_appid")
        updated = c.get("updated_at", lambda v: values.moment(v, now))
        registered = c.get("registered_at", lambda v: values.moment(v, now))
        city = c.get("city")
        traits = compact(
            {
                "phone": c.get("phone", values.phone),
                "email": c.get("email", values.email),
                "unionid": c.get("unionid", values.identifier),
                "openid": openid,
                "appid": appid,
                "name": c.get("name"),
                "gender": c.get("gender", values.gender),
                "birthday": c.get("birthday", lambda v: values.day(v, now)),
                "address": {"city": city} if city else None,
                "level": c.get("level"),
                "points": c.get("points", values.whole),
                "createdAt": values.iso(registered) if registered else None,
                "store": c.get("store"),
            }
        )
        consents = _consents(c)
        evidence = c.get("consent_evidence")
        if not c.ok:
            continue
        context: dict = {"library": LIBRARY}
        if consents:
            context["consent"] = compact({"categoryPreferences": consents, "evidence": evidence})
        when = updated or now
        content = digest(
            {"traits": traits, "consent": context.get("consent"), "updated_at": updated and when.isoformat()}
        )
        message = {
            "type": "identify",
            "userId": member_id,
            "timestamp": values.iso(when),
            "traits": traits,
            "context": context,
        }
        planned.append(Planned(record.row, member_id, message, when, content, f"{member_id}\x1f{content}"))
    return planned


SPEC = Kind(
    name="members",
    source_kind="crm",
    default_source="CRM 导入",
    columns=COLUMNS,
    required=("member_id",),
    build=build,
    key_column="member_id",
    column_check=consent_column,
)
