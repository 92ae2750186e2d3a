"""Dataset versions over HTTP (DataStorage): list, show, diff, tag, checkout, verify, download.

A version is named by its semantic version (v1.2.0), a tag, "current" or "latest". Responses
leave out the server's file-system paths.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from esk_pipeline.api.auth import MaintainerId
from esk_pipeline.api.deps import StorageDep
from esk_pipeline.api.downloads import file_download_responses, temporary_file_response
from esk_pipeline.api.errors import error_responses
from esk_pipeline.api.schemas import StorageStatsOut, TagIn, VerifyOut, VersionOut
from esk_pipeline.pipeline.fsutil import scratch_prefix
from esk_pipeline.pipeline.versions import (
    DatasetVersion,
    VersionDiff,
    VersionStatus,
)

router = APIRouter(prefix="/api/versions", tags=["versions"], responses=error_responses(404, 409))

Ref = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="a version (v1.2.0), a tag, 'current' or 'latest'",
    ),
]
ArchiveFormat = Literal["tar.gz", "zip"]
_ARCHIVE_MEDIA_TYPES = {"tar.gz": "application/gzip", "zip": "application/zip"}


@router.get(
    "",
    response_model=list[VersionOut],
    summary="All versions, oldest first (optionally only one status)",
)
def list_versions(
    reviewer_id: MaintainerId, storage: StorageDep, status: VersionStatus | None = None
) -> list[DatasetVersion]:
    return storage.list_versions(status=status)


@router.get("/stats", response_model=StorageStatsOut, summary="Counts, sizes, current and tags")
def storage_stats(reviewer_id: MaintainerId, storage: StorageDep) -> StorageStatsOut:
    return StorageStatsOut.model_validate(storage.get_stats())


@router.get(
    "/{ref}",
    response_model=VersionOut,
    summary="One version's record: files, checksums, counts, tags",
)
def get_version(ref: Ref, reviewer_id: MaintainerId, storage: StorageDep) -> DatasetVersion:
    return storage.get_version(ref)


@router.get(
    "/{ref}/diff/{other}",
    response_model=VersionDiff,
    summary="Record-level diff from one version to another, with a readable summary",
)
def diff_versions(
    ref: Ref,
    other: Ref,
    reviewer_id: MaintainerId,
    storage: StorageDep,
    examples: Annotated[int, Query(ge=0, le=100)] = 10,
) -> VersionDiff:
    return storage.compare_versions(ref, other, examples=examples)


@router.post(
    "/{ref}/tags",
    response_model=VersionOut,
    summary="Tag a version (a tag that named another version moves)",
)
def tag_version(
    ref: Ref, body: TagIn, reviewer_id: MaintainerId, storage: StorageDep
) -> DatasetVersion:
    return storage.tag_version(ref, body.tag)


@router.post(
    "/{ref}/checkout",
    response_model=VersionOut,
    summary="Make a version current (restored from the archive if needed)",
)
def checkout(ref: Ref, reviewer_id: MaintainerId, storage: StorageDep) -> DatasetVersion:
    storage.checkout(ref)
    return storage.get_version("current")


@router.get(
    "/{ref}/verify",
    response_model=VerifyOut,
    summary="Re-hash the version's files against their recorded checksums",
)
def verify(ref: Ref, reviewer_id: MaintainerId, storage: StorageDep) -> VerifyOut:
    version = storage.get_version(ref).version
    problems = storage.verify(version)
    return VerifyOut(version=version, ok=not problems, problems=problems)


@router.get(
    "/{ref}/export",
    response_class=FileResponse,
    summary="Download a version as one verified archive (manifest + files)",
    responses=file_download_responses(
        "The version's export archive", _ARCHIVE_MEDIA_TYPES.values()
    ),
)
def export_version(
    ref: Ref,
    reviewer_id: MaintainerId,
    storage: StorageDep,
    format: Annotated[ArchiveFormat, Query(description="archive format")] = "tar.gz",
) -> FileResponse:
    version = storage.get_version(ref).version
    return temporary_file_response(
        lambda folder: storage.export_version(version, folder / f"{version}.{format}"),
        prefix=scratch_prefix("version-export"),
        media_type=_ARCHIVE_MEDIA_TYPES[format],
    )
