"""Bulk imports of customer data: members, orders with line items, official-account follows, store visits.

CSV or JSONL files become Segment-shaped events in the event store (identify for members, e-commerce
and touchpoint tracks for the rest), attributed to a source, with a per-row report, all or nothing,
and idempotent re-imports. Entry point: `siyu.imports.service.run_import`; schemas: docs/import.md.
"""
