"""One ID: identity resolution. Platform identifiers (子ID) resolve to a stable super ID (祖ID).

`service` streams events in one by one (`resolve`), `rebuild` recomputes a workspace's graph from
history in one vectorised pass; both apply the same rules (`engine`) and guard rails (`rules`).
"""
