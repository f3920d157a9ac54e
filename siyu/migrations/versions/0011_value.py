"""customer value (issue 5, part 2): value settings and runs, per-person values, repurchase cycles per
category, products, association rules and recommendations, personal share links, referral edges,
lookalike audiences

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 16:00:00.000000

Written by hand. New tables only, so it runs the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE"
    )


def _index(table: str, name: str, columns: list[str]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(name, columns, unique=False)


def upgrade() -> None:
    op.create_table(
        "value_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("pyramid_method", sa.String(length=16), nullable=False),
        sa.Column("commercial_weight", sa.Float(), nullable=False),
        sa.Column("social_weight", sa.Float(), nullable=False),
        sa.Column("koc_top", sa.Integer(), nullable=False),
        sa.Column("share_url", sa.Text(), nullable=False),
        sa.Column("utc_offset_hours", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("value_settings"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_value_settings")),
    )
    op.create_table(
        "value_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("started_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("finished_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        _workspace_fk("value_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_runs")),
    )
    _index("value_runs", "ix_value_runs_workspace", ["workspace_id", "id"])

    op.create_table(
        "value_persons",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("recency_days", sa.Float(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=True),
        sa.Column("monetary", sa.Float(), nullable=True),
        sa.Column("r_score", sa.Integer(), nullable=True),
        sa.Column("f_score", sa.Integer(), nullable=True),
        sa.Column("m_score", sa.Integer(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=True),
        sa.Column("value_tier", sa.String(length=16), nullable=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("average_order_value", sa.Float(), nullable=False),
        sa.Column("days_since_order", sa.Float(), nullable=True),
        sa.Column("tenure_days", sa.Float(), nullable=True),
        sa.Column("categories", sa.Integer(), nullable=False),
        sa.Column("active_days", sa.Integer(), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("purchases_30d", sa.Float(), nullable=True),
        sa.Column("purchases_90d", sa.Float(), nullable=True),
        sa.Column("expected_order_value", sa.Float(), nullable=True),
        sa.Column("clv", sa.Float(), nullable=True),
        sa.Column("churn_risk", sa.String(length=16), nullable=True),
        sa.Column("predicted_value", sa.String(length=16), nullable=True),
        sa.Column("purchase_intent", sa.String(length=16), nullable=True),
        sa.Column("cluster", sa.Integer(), nullable=True),
        sa.Column("repurchase_status", sa.String(length=16), nullable=True),
        sa.Column("next_purchase", sa.Date(), nullable=True),
        sa.Column("referrer", sa.Integer(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=True),
        sa.Column("direct_referrals", sa.Integer(), nullable=False),
        sa.Column("descendants", sa.Integer(), nullable=False),
        sa.Column("pagerank", sa.Float(), nullable=False),
        sa.Column("commercial_value", sa.Float(), nullable=False),
        sa.Column("commercial_score", sa.Float(), nullable=False),
        sa.Column("social_score", sa.Float(), nullable=False),
        sa.Column("value_score", sa.Float(), nullable=False),
        sa.Column("is_koc", sa.Boolean(), nullable=False),
        _workspace_fk("value_persons"),
        sa.PrimaryKeyConstraint("workspace_id", "super_id", name=op.f("pk_value_persons")),
    )
    _index("value_persons", "ix_value_persons_segment", ["workspace_id", "rfm_segment"])
    _index("value_persons", "ix_value_persons_score", ["workspace_id", "value_score"])

    op.create_table(
        "value_repurchase",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("last_purchase", sa.Date(), nullable=False),
        sa.Column("interval_days", sa.Float(), nullable=True),
        sa.Column("interval_source", sa.String(length=16), nullable=True),
        sa.Column("next_expected", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _workspace_fk("value_repurchase"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_repurchase")),
    )
    _index("value_repurchase", "ix_value_repurchase_status", ["workspace_id", "status", "next_expected"])
    _index("value_repurchase", "ix_value_repurchase_person", ["workspace_id", "super_id"])

    op.create_table(
        "value_products",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        _workspace_fk("value_products"),
        sa.PrimaryKeyConstraint("workspace_id", "product_id", name=op.f("pk_value_products")),
    )
    op.create_table(
        "value_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("first", sa.String(length=200), nullable=False),
        sa.Column("second", sa.String(length=200), nullable=True),
        sa.Column("consequent", sa.String(length=200), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        _workspace_fk("value_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_rules")),
    )
    _index("value_rules", "ix_value_rules_rank", ["workspace_id", "rank"])
    _index("value_rules", "ix_value_rules_first", ["workspace_id", "first"])
    op.create_table(
        "value_recommendations",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rank", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        _workspace_fk("value_recommendations"),
        sa.PrimaryKeyConstraint("workspace_id", "super_id", "rank", name=op.f("pk_value_recommendations")),
    )

    op.create_table(
        "value_share_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("super_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("value_share_links"),
        sa.ForeignKeyConstraint(
            ["link_id"], ["short_links.id"], name=op.f("fk_value_share_links_link_id_short_links"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_share_links")),
        sa.UniqueConstraint("link_id", name="uq_value_share_links_link"),
    )
    _index("value_share_links", "ix_value_share_links_person", ["workspace_id", "super_id"])
    op.create_table(
        "value_referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("referrer", sa.Integer(), nullable=False),
        sa.Column("referred", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("value_referrals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_referrals")),
        sa.UniqueConstraint("workspace_id", "referred", name="uq_value_referrals_referred"),
    )
    _index("value_referrals", "ix_value_referrals_referrer", ["workspace_id", "referrer"])

    op.create_table(
        "value_lookalikes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("seed_segment_id", sa.Integer(), nullable=True),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("seed_name", sa.String(length=100), nullable=False),
        sa.Column("tag_code", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=16), nullable=False),
        sa.Column("top_n", sa.Integer(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("seeds", sa.Integer(), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("auc", sa.Float(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("value_lookalikes"),
        sa.ForeignKeyConstraint(
            ["seed_segment_id"],
            ["segments.id"],
            name=op.f("fk_value_lookalikes_seed_segment_id_segments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_value_lookalikes_segment_id_segments"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_lookalikes")),
    )
    _index("value_lookalikes", "ix_value_lookalikes_workspace", ["workspace_id", "id"])


def downgrade() -> None:
    for table in (
        "value_lookalikes",
        "value_referrals",
        "value_share_links",
        "value_recommendations",
        "value_rules",
        "value_products",
        "value_repurchase",
        "value_persons",
        "value_runs",
        "value_settings",
    ):
        op.drop_table(table)
