"""The one reading of a library's version that every fenced shortcut checks against."""

from __future__ import annotations


def major_minor(found: str) -> tuple[int, ...]:
    """`found` (an installed distribution's version, "1.1.9") as (major, minor): what each
    shortcut past a library's public API was written and tested for."""
    return tuple(int(part) for part in found.split(".")[:2] if part.isdigit())
