"""File downloads written on demand: into a fresh temporary folder, removed once sent."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask


def temporary_file_response(
    write: Callable[[Path], Path], *, prefix: str, media_type: str, filename: str | None = None
) -> FileResponse:
    """Send the file `write(folder)` creates in a new temporary folder, offered as `filename`
    (default: the file's own name). The folder is removed after the response is sent, or at
    once if `write` fails, so a download never leaves files behind."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path = write(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename or path.name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def file_download_responses(description: str, media_types: Iterable[str]) -> dict[int, Any]:
    """The OpenAPI `responses` entry of a route that answers with a file download."""
    content = {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}
    return {200: {"description": description, "content": content}}
