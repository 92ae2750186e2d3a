"""The REST API and reviewer page: `esk_pipeline.api:app` (serve with uvicorn)."""

from esk_pipeline.api.app import create_app

app = create_app()

__all__ = ["app", "create_app"]
