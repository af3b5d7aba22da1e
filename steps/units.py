"""Human-readable quantities, shared by the steps' messages and both front ends (no imports)."""

from __future__ import annotations


def human_size(n: float | None) -> str:
    """Bytes as a short decimal string ("1.5 MB"); "size unknown" for None."""
    if n is None:
        return "size unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover
