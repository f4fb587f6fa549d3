"""Phone number normalisation to E.164, the key of caller lookup (implemented in :mod:`core.phones`, shared with
the dialer)."""

from __future__ import annotations

from core.phones import normalise_phone, try_normalise_phone

__all__ = ["normalise_phone", "try_normalise_phone"]
