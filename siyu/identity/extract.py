"""The identifiers a stored event or short-link click carries, as One ID reads them.

Segment messages name people in several places, and which identifier type a field stands for
depends on the touchpoint (source kind) that sent it:

* `userId` is the brand's member id (`member_id`);
* `anonymousId` (and an alias's `previousId`) is the SDK's own id of the device: a mini program's
  storage id is one phone (`device_id`), a web SDK's cookie one browser (`visitor_cookie`);
* traits (identify `traits` merged over `context.traits`): `phone`, `email`, `unionid`,
  `member_id`, `device_id`, and `openid`, which is only unique within its WeChat app, so it is
  kept as 'appid:openid' (appid from `traits.appid`, `context.app.id` or `context.wechat.appid`);
* `context.device.id` is a device id;
* `context.externalIds` (Segment's `[{"id", "type"}]`) name any type the workspace's rules know,
  e.g. `{"type": "visitor_cookie", "id": <the short-link visitor id>}` from a landing page.

Events are already stored when they are read here, so nothing is refused: an identifier that is
malformed or junk is dropped on its own and the event resolves on the rest (or stays anonymous).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from siyu.errors import InvalidInput
from siyu.identity.normalize import MAX_IDENTIFIERS, Key, normalize_key
from siyu.identity.rules import Rules

Pair = tuple[str, str]
TRAIT_TYPES = ("member_id", "unionid", "phone", "email", "device_id")
DEVICE_SIDE_KINDS = frozenset({"mini_program"})  # their anonymousId names a device, not a browser


def anonymous_type(source_kind: str | None) -> str:
    return "device_id" if source_kind in DEVICE_SIDE_KINDS else "visitor_cookie"


def person_traits(type_: str | None, traits: Any, context: Any) -> dict[str, Any]:
    """An identify's `traits` over `context.traits`; other types carry only `context.traits`.

    (A group call's top-level traits describe the group, not the person.)"""
    merged: dict[str, Any] = {}
    if isinstance(context, Mapping) and isinstance(context.get("traits"), Mapping):
        merged.update(context["traits"])
    if type_ == "identify" and isinstance(traits, Mapping):
        merged.update(traits)
    return merged


def event_identifiers(
    *,
    type_: str | None,
    user_id: Any,
    anonymous_id: Any,
    previous_id: Any,
    traits: Mapping[str, Any],
    context: Any,
    source_kind: str | None,
    known_types: Container[str],
) -> list[Pair]:
    """(type, raw value) pairs of one message, unvalidated; `traits` as `person_traits` gives them."""
    pairs: list[Pair] = []

    def add(id_type: str, value: Any) -> None:
        text = _text(value)
        if text is not None:
            pairs.append((id_type, text))

    add("member_id", user_id)
    anon = anonymous_type(source_kind)
    add(anon, anonymous_id)
    add(anon, previous_id)
    for name in TRAIT_TYPES:
        add(name, traits.get(name))
    ctx = context if isinstance(context, Mapping) else {}
    openid = _text(traits.get("openid"))
    if openid is not None:
        appid = _text(traits.get("appid")) or _text(_dig(ctx, "app", "id")) or _text(_dig(ctx, "wechat", "appid"))
        if appid is not None:
            pairs.append(("openid", f"{appid}:{openid}"))
        elif ":" in openid:  # already 'appid:openid'
            pairs.append(("openid", openid))
    add("device_id", _dig(ctx, "device", "id"))
    external = ctx.get("externalIds")
    if isinstance(external, list):
        for item in external[:MAX_IDENTIFIERS]:
            if isinstance(item, Mapping):
                id_type = item.get("type")
                if isinstance(id_type, str) and id_type in known_types:
                    add(id_type, item.get("id"))
    return pairs


def message_identifiers(message: Mapping[str, Any], source_kind: str | None, known_types: Container[str]) -> list[Pair]:
    """`event_identifiers` of a Segment message as sent (camelCase fields)."""
    context = message.get("context")
    return event_identifiers(
        type_=message.get("type"),
        user_id=message.get("userId"),
        anonymous_id=message.get("anonymousId"),
        previous_id=message.get("previousId"),
        traits=person_traits(message.get("type"), message.get("traits"), context),
        context=context,
        source_kind=source_kind,
        known_types=known_types,
    )


def click_identifiers(person_ref: Any, visitor_id: Any) -> tuple[list[Pair], list[Pair]]:
    """(identifiers to resolve, identifiers only to look up) of a short-link click.

    A personal link's `person_ref` is its member: the click is theirs. The visitor cookie only counts
    once that browser has identified itself; a click alone never creates a person for it (see
    `siyu.identity.service.resolve_click`)."""
    member = _text(person_ref)
    cookie = _text(visitor_id)
    return ([("member_id", member)] if member else []), ([("visitor_cookie", cookie)] if cookie else [])


def usable_keys(rules: Rules, pairs: Iterable[Pair]) -> list[Key]:
    """Normalised, distinct keys, strongest first; unknown types, junk and malformed values dropped.

    At most MAX_IDENTIFIERS (the strongest): what `service.resolve` accepts for one event."""
    keys: set[Key] = set()
    for id_type, value in pairs:
        if id_type not in rules:
            continue
        try:
            key = normalize_key(rules[id_type], value)
        except InvalidInput:
            continue
        if key is not None:
            keys.add(key)
    return sorted(keys, key=rules.sort_key)[:MAX_IDENTIFIERS]


def _text(value: Any) -> str | None:
    """Identifier values arrive as text or, from CRMs and forms, as whole numbers (phone 13800138001)."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _dig(mapping: Mapping[str, Any], *path: str) -> Any:
    value: Any = mapping
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
