"""Phone number normalisation to E.164, the key of caller lookup."""

from __future__ import annotations

import phonenumbers

from core.errors import InvalidInputError


def normalise_phone(raw: str, default_region: str = "CN") -> str:
    """Return ``raw`` as E.164 (``+8613800138000``).

    Accepts spaces, dashes, brackets, ``+86``/``0086`` prefixes and local numbers of ``default_region`` (ISO
    3166 alpha-2). SIP user parts like ``sip:+8613800138000@host`` are not handled here; strip them first.
    Raises :class:`InvalidInputError` when the text is not a valid number.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInputError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalise_phone(raw: str, default_region: str = "CN") -> str | None:
    """Like :func:`normalise_phone` but returns ``None`` for text that is not a valid number (for lookups)."""
    try:
        return normalise_phone(raw, default_region)
    except InvalidInputError:
        return None
