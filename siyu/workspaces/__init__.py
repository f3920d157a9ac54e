"""Workspaces, domains, members and API keys."""
