"""The hash that cache keys are made of: :func:`digest`, shared by the frame cache (a run's and a
frame's key) and the clip (its plan, part of every key), so that neither imports the other."""

from __future__ import annotations

import hashlib


def digest(*parts: bytes | str) -> str:
    """SHA-256 of ``parts``, each length-prefixed (so ("ab", "c") and ("a", "bc") differ)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()
