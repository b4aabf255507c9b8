"""How a reference is named to a person: "Container MSKU9070323 (Maersk)", "Kontena …"."""

from __future__ import annotations

from functools import lru_cache

from handlers import catalogue
from handlers.references import Reference, find_references


@lru_cache(maxsize=4096)
def _recognised(kind: str, value: str) -> Reference | None:
    for found in find_references(value):
        if found.value == value and found.kind == kind:
            return found
    return None


def reference_label(kind: str, value: str, lang: str, carrier: str | None = None) -> str:
    """The kind in the reader's language, the reference as people write it, and the carrier."""
    found = _recognised(kind, value)
    shown = found.display if found else value
    carrier = carrier or (found.carrier if found else None)
    label = f"{catalogue.text(f'kind.{kind}', lang)} {shown}"
    return f"{label} ({carrier})" if carrier else label
