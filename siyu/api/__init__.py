"""REST API under /api/v1 (FastAPI) and the compatibility APIs."""
