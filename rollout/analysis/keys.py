"""The unit every metric answer is given for: one revision of one namespace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RevisionKey:
    """One revision of one namespace: the unit every answer is given for."""

    namespace: str
    revision: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.revision}"
