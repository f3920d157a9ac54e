"""Webhooks: HMAC-signed deliveries on link and click events, retried with back-off."""
