"""Secrets stay out of evidence: passwords in DSNs, credentials and tokens in URLs, and whatever
the target description marks secret (`secret_fields`) are replaced by *** in everything a run
writes and prints. The bottom layer: imports nothing of ours."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MASK", "secrets_of", "redact", "redact_file"]

MASK = "***"
_TOKEN_PARAMS = ("token", "key", "secret", "password", "passwd", "sig", "signature", "auth", "access_token")
_PATTERNS = (
    re.compile(r"(password\s*=\s*)('[^']*'|[^\s'\"&,;]+)", re.I),                   # libpq keyword DSNs
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)([^@/\s'\"]+)(@)", re.I),       # scheme://user:SECRET@
    re.compile(r"([?&](?:" + "|".join(_TOKEN_PARAMS) + r")=)([^&#\s'\"]+)", re.I),    # ?token=SECRET
)


def secrets_of(target: dict | None = None, *urls: str | None) -> list[str]:
    """The literal secret strings to mask: the values of the target's `secret_fields`, and the
    credentials and token parameters inside the given URLs (a webhook URL)."""
    found: list[str] = list(_passwords_in((target or {}).get("passfile")))
    for field in (target or {}).get("secret_fields") or []:
        value = (target or {}).get(field)
        if isinstance(value, str) and len(value) >= 4:  # shorter would mask ordinary words
            found.append(value)
    for url in urls:
        if not url:
            continue
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in _TOKEN_PARAMS and len(v) >= 4]
    return sorted(set(found), key=len, reverse=True)  # longest first: no partial leftovers


def _passwords_in(passfile: str | None) -> list[str]:
    """The generated database passwords (libpq password file: host:port:db:user:password). No DSN
    carries them, but an error message quoting one must not reach the evidence either."""
    try:
        lines = Path(passfile).read_text().splitlines() if passfile else []
    except OSError:
        return []
    return [line.rsplit(":", 1)[1] for line in lines if line.count(":") >= 4 and len(line.rsplit(":", 1)[1]) >= 4]


def redact(text: str, secrets: list[str] = ()) -> str:
    for s in secrets:
        text = text.replace(s, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(3) if m.lastindex >= 3 else ""), text)
    return text


def redact_file(path: str | Path, secrets: list[str] = (), in_place: bool = False) -> None:
    """Rewrite a text file with its secrets masked (only when something changes): through a new
    file renamed over it, or `in_place` for a file a writer still holds open for appending."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    clean = redact(text, secrets)
    if clean != text and in_place:
        with open(p, "r+", encoding="utf-8") as f:
            f.write(clean)
            f.truncate()
    elif clean != text:
        tmp = p.with_name(p.name + ".redact-tmp")
        tmp.write_text(clean, encoding="utf-8")
        tmp.replace(p)
