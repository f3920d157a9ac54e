"""The names a workspace's rules may use: traits seen, tags, consent purposes, identifier types, links.

Trait names come from the stored traits (a scan), so they are cached briefly per workspace: the
console's live count asks on every edit.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.consent.purposes import list_purposes
from siyu.events.store import EventStore
from siyu.identity.rules import get_rules
from siyu.links.models import LinkTag, ShortLink
from siyu.links.models import Tag as LinkTagName
from siyu.profiles.models import ProfileTrait, ProfileTraitStrategy
from siyu.segments import facts, rules
from siyu.segments.rules import TagInfo, Vocabulary
from siyu.tags.models import TagDefinition

TRAIT_TTL = 5.0
# (database URL, workspace id) -> (expires, names): one process may serve several databases (tests,
# tools), whose workspaces share ids.
_traits: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def trait_names(session: Session, workspace_id: int, fresh: bool = False) -> frozenset[str]:
    """Every trait key a person of the workspace has, or a strategy names (cached for TRAIT_TTL seconds)."""
    now = time.monotonic()
    key = (str(session.get_bind().url), workspace_id)
    with _lock:
        hit = _traits.get(key)
    if hit is not None and hit[0] > now and not fresh:
        return hit[1]
    names = set(session.scalars(select(ProfileTrait.key).where(ProfileTrait.workspace_id == workspace_id).distinct()))
    names.update(
        session.scalars(select(ProfileTraitStrategy.key).where(ProfileTraitStrategy.workspace_id == workspace_id))
    )
    found = frozenset(names)
    with _lock:
        _traits[key] = (now + TRAIT_TTL, found)
    return found


def tag_infos(session: Session, workspace_id: int) -> dict[str, TagInfo]:
    rows = session.execute(
        select(TagDefinition.code, TagDefinition.id, TagDefinition.kind, TagDefinition.spec).where(
            TagDefinition.workspace_id == workspace_id
        )
    )
    out = {}
    for code, tag_id, kind, spec in rows:
        values = tuple(v["code"] for v in (spec or {}).get("values", []) if isinstance(v, dict) and "code" in v)
        out[code] = TagInfo(tag_id, kind, values)
    return out


def links_of(session: Session, workspace_id: int) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """(slug -> link ids, link tag name -> link ids) of the workspace's links, archived ones included
    (their clicks still count)."""
    by_slug: dict[str, list[int]] = defaultdict(list)
    for link_id, slug in session.execute(
        select(ShortLink.id, ShortLink.slug).where(ShortLink.workspace_id == workspace_id)
    ):
        by_slug[slug].append(link_id)
    by_tag: dict[str, list[int]] = defaultdict(list)
    for name, link_id in session.execute(
        select(LinkTagName.name, LinkTag.link_id)
        .join(LinkTag, LinkTag.tag_id == LinkTagName.id)
        .where(LinkTagName.workspace_id == workspace_id)
    ):
        by_tag[name].append(link_id)
    return {k: tuple(v) for k, v in by_slug.items()}, {k: tuple(sorted(v)) for k, v in by_tag.items()}


def vocabulary(session: Session, workspace_id: int, strict_traits: bool = True) -> Vocabulary:
    """The workspace's names; `strict_traits` False accepts any trait name (recomputing stored rules)."""
    links, link_tags = links_of(session, workspace_id)
    return Vocabulary(
        traits=trait_names(session, workspace_id) if strict_traits else None,
        tags=tag_infos(session, workspace_id),
        purposes=frozenset(p.code for p in list_purposes(session, workspace_id)),
        id_types=frozenset(get_rules(session, workspace_id).types),
        links=links,
        link_tags=link_tags,
    )


def event_names(store: EventStore, workspace_id: int, limit: int = 100) -> list[str]:
    """Behaviour names in the facts, most frequent first (the builder's suggestions)."""
    if not facts.exists(store):
        return []
    rows = store.query(
        "SELECT event, count(*) AS n FROM facts_events WHERE workspace_id = ? AND event IS NOT NULL "
        "GROUP BY event ORDER BY n DESC, event LIMIT ?",
        [workspace_id, limit],
    )
    return [r[0] for r in rows]


def _suggested_traits(store: EventStore, workspace_id: int, names: frozenset[str]) -> list[str]:
    """Trait names as rules use them: an object trait ('address') by its members ('address.city')."""
    flat: set[str] = set()
    if facts.exists(store):
        flat = {
            r[0] for r in store.query("SELECT DISTINCT key FROM facts_traits WHERE workspace_id = ?", [workspace_id])
        }
    parents = {k.split(".", 1)[0] for k in flat if "." in k}
    return sorted((set(names) - (parents - flat)) | flat)


def builder_schema(session: Session, store: EventStore, workspace_id: int) -> dict[str, Any]:
    """Everything a rule editor offers: the workspace's names, and the operators and limits of the schema."""
    vocab = vocabulary(session, workspace_id)
    tags = session.execute(
        select(TagDefinition.code, TagDefinition.name, TagDefinition.name_en, TagDefinition.kind, TagDefinition.spec)
        .where(TagDefinition.workspace_id == workspace_id)
        .order_by(TagDefinition.id)
    ).all()
    purposes = list_purposes(session, workspace_id)
    return {
        "traits": _suggested_traits(store, workspace_id, vocab.traits or frozenset()),
        "tags": [
            {"code": c, "name": n, "name_en": e, "kind": k, "values": (s or {}).get("values", [])}
            for c, n, e, k, s in tags
        ],
        "purposes": [{"code": p.code, "name": p.name, "name_en": p.name_en, "enabled": p.enabled} for p in purposes],
        "id_types": sorted(vocab.id_types),
        "links": sorted(vocab.links),
        "link_tags": sorted(vocab.link_tags),
        "events": event_names(store, workspace_id),
        "ops": {
            "trait": list(rules.TRAIT_OPS),
            "tag": list(rules.TAG_OPS),
            "event": list(rules.COMPARE_OPS),
            "measures": list(rules.MEASURES),
        },
        "limits": {
            "max_depth": rules.MAX_DEPTH,
            "max_nodes": rules.MAX_NODES,
            "max_window_days": rules.MAX_WINDOW_DAYS,
        },
    }
