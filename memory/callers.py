"""Caller identity: one key per caller, whatever form the number arrives in.

``sip:+1 (555) 010-0142@pbx.example;user=phone``, ``tel:+15550100142`` and ``+1-555-010-0142`` are
the same caller; a SIP URI without a number (``sip:alice@example.com``) is keyed by user@host.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^(sips?|tel):", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[+\d\s().\-/]+$")


def caller_key(raw: str) -> str:
    """Normalise a caller number or URI into the key of their memory."""
    text = raw.strip().strip("<>").strip()
    if not text:
        raise ValueError("empty caller id")
    text = _SCHEME.sub("", text).split(";", 1)[0]
    user, _, host = text.partition("@")
    if _PHONE_CHARS.match(user) and any(c.isdigit() for c in user):
        digits = re.sub(r"[^\d]", "", user)
        return ("+" if user.lstrip().startswith("+") else "") + digits
    if host:
        # The port in a From URI is the phone's current socket, not who is calling.
        host = host if host.startswith("[") else host.split(":", 1)[0]
        return f"sip:{user.lower()}@{host.lower()}"
    return user.lower()
