"""Kept for imports from earlier versions: see regops.tracking."""

from __future__ import annotations

from regops.tracking import stages_supported

__all__ = ["stages_supported"]
