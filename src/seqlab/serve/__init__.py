"""The HTTP service and web page (needs the `serve` extra: FastAPI + uvicorn)."""
