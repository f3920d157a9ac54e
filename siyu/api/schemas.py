"""Request bodies of the REST API (types for OpenAPI; the domain does the real validation)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Rule(BaseModel):
    when: dict[str, list[str]] = Field(description="conditions: os, device, platform, country, province")
    url: str


class Variant(BaseModel):
    url: str
    weight: int = 1


class LinkFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination_url: str | None = Field(None, examples=["https://shop.example.com/coffee"])
    title: str | None = None
    notes: str | None = None
    tags: list[str] | None = None
    redirect_status: int | None = Field(None, description="301, 302 (default), 307 or 308")
    forward_query: bool | None = None
    pass_visitor_id: bool | None = None
    utm: dict[str, str] | None = Field(None, description="source, medium, campaign, term, content")
    expires_at: str | None = Field(None, description="ISO 8601 date-time")
    max_clicks: int | None = None
    fallback_url: str | None = None
    password: str | None = None
    rules: list[Rule] | None = None
    variants: list[Variant] | None = None
    anti_block_platforms: list[str] | None = Field(None, description="防红: platforms that get a guidance page")
    allowed_platforms: list[str] | None = None
    blocked_platforms: list[str] | None = None
    person_ref: str | None = None
    archived: bool | None = None

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        for key in ("rules", "variants"):
            if data.get(key) is not None:
                data[key] = [dict(item) for item in data[key]]
        return data


class LinkCreate(LinkFields):
    destination_url: str = Field(examples=["https://shop.example.com/coffee"])  # type: ignore[assignment]
    slug: str | None = Field(None, description="custom slug; random when absent")
    domain: str | None = Field(None, description="one of the workspace's domains; the default when absent")


class LinkUpdate(LinkFields):
    pass


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hostname: str
    is_default: bool = False


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    ip_mode: str | None = Field(None, description="full, truncated, hashed or none")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    events: list[str] = Field(default_factory=lambda: ["link.created", "link.updated", "link.clicked"])
