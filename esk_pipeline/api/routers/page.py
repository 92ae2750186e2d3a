"""The reviewer web page: a few static files, public (the page itself asks for a token)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Only these files are served: a request path never becomes a file-system path.
_STATIC_FILES = {
    "review.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
}
_NO_STORE = {"Cache-Control": "no-cache"}


@router.get("/")
def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_NO_STORE
    )


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask for it on their own; without it every page load logs a 404."""
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")


@router.get("/review")
def review_page() -> RedirectResponse:
    return RedirectResponse("/")


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    media_type = _STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_NO_STORE)
