"""Detecting how to read a stored file with what the tenant knows: the catalog's inputs
pick a workbook's sheet, and a preset made for the same header supplies the reading
profile choices the file itself does not settle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.modules.uploads.models import MappingPreset
from server.modules.uploads.parsing import FileFormat, sniff
from server.modules.uploads.profile import ReadingProfile
from server.modules.uploads.targets import mapping_targets

PROFILE_FIELDS = ("decimal", "thousands", "date_order")


def detect(session: Session, path: Path, kind: str,
           sheet: str | None = None, **choices: Any) -> FileFormat:
    """Sniff with the catalog's inputs as sheet-choice targets, then apply the profile of a
    preset made for the same header where the file itself settles nothing."""
    targets = mapping_targets(session, kind, None)
    fmt = sniff(path, sheet, targets=targets, **choices)
    _apply_preset_profile(session, kind, fmt)
    return fmt


def _apply_preset_profile(session: Session, kind: str, fmt: FileFormat) -> None:
    preset = session.scalar(select(MappingPreset).where(
        MappingPreset.kind == kind, MappingPreset.headers == fmt.columns,
        MappingPreset.profile != {}).order_by(MappingPreset.updated_at.desc()).limit(1))
    if preset is None:
        return
    profile = ReadingProfile.from_json(fmt.profile)
    for name in PROFILE_FIELDS:
        saved = preset.profile.get(name)
        if getattr(profile, name) is None and saved is not None:
            setattr(profile, name, saved)
            profile.decided[name] = f"from preset '{preset.name}'"
    fmt.profile = profile.as_json()


