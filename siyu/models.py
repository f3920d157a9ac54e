"""Import every model so Alembic and create-all see the whole schema."""

from siyu.consent.models import ConsentRecord  # noqa: F401  (and purposes, issues)
from siyu.identity.models import IdentityPerson  # noqa: F401  (and the rest of the identity graph)
from siyu.imports.models import ImportRun  # noqa: F401
from siyu.links.models import LinkTag, ShortLink, Tag
from siyu.privacy.models import PrivacyAudit  # noqa: F401
from siyu.profiles.models import ProfileTrait  # noqa: F401  (and trait strategies)
from siyu.segments.models import Segment  # noqa: F401  (and members, history, snapshots, exports)
from siyu.sources.models import Source  # noqa: F401
from siyu.tags.models import TagDefinition  # noqa: F401  (and versions, assignments, history)
from siyu.value.models import ValuePerson  # noqa: F401  (and settings, runs, rules, share links, referrals)
from siyu.webhooks.models import Webhook, WebhookDelivery
from siyu.workspaces.invitations import Invitation  # noqa: F401
from siyu.workspaces.models import ApiKey, Domain, Membership, User, Workspace

__all__ = [
    "ApiKey",
    "Domain",
    "LinkTag",
    "Membership",
    "ShortLink",
    "Tag",
    "User",
    "Webhook",
    "WebhookDelivery",
    "Workspace",
]
