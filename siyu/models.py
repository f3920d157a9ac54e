"""Import every model so Alembic and create-all see the whole schema."""

from siyu.identity.models import IdentityPerson  # noqa: F401  (and the rest of the identity graph)
from siyu.links.models import LinkTag, ShortLink, Tag
from siyu.sources.models import Source  # noqa: F401
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
