"""The redirect hot path: raw ASGI, no blocking I/O, clicks queued in-process."""
