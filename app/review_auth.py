"""Who may use the review page, and how a browser proves it on every request.

Each reviewer has a token of their own (``DOCPIPE_REVIEW_TOKENS=alice:<token>,...`` or a
file of ``name:token`` lines). A reviewer logs in once with their token; the server then
keeps them in a signed session cookie, and the name in it is the reviewer a decision is
recorded under: never a name a form sends. Each session has its CSRF token, derived from
the session and checked on every POST.

The signing key is made afresh when the server starts: a restart logs everyone out,
and no key is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# A reviewer's name goes into the audit trail and the session cookie as it is.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# Tokens shorter than this are guessable; `secrets.token_urlsafe(32)` gives 43 characters.
MIN_TOKEN_CHARS = 24
SESSION_SECONDS = 12 * 3600
DEV_REVIEWER = "dev"
TOKENS_ENV = "DOCPIPE_REVIEW_TOKENS"
TOKENS_FILE_ENV = "DOCPIPE_REVIEW_TOKENS_FILE"


class ReviewerTokensError(ValueError):
    """The reviewer tokens are missing or malformed; the message says which entry."""


@dataclass(frozen=True)
class ReviewerTokens:
    """Reviewer name -> token."""

    by_name: Mapping[str, str]

    def reviewer_for(self, token: str) -> str | None:
        """The reviewer whose token ``token`` is, or None.

        Every token is compared, in constant time each, so that the time taken says
        nothing about which one came close.
        """
        given = token.encode()
        found = None
        for name, expected in self.by_name.items():
            if hmac.compare_digest(given, expected.encode()):
                found = name
        return found


def parse_tokens(text: str, *, source: str) -> ReviewerTokens:
    """``name:token`` entries, separated by commas or lines (``#`` starts a comment).

    Raises:
        ReviewerTokensError: no entry, a malformed or duplicate name, or a short token.
    """
    by_name: dict[str, str] = {}
    entries = [e.split("#", 1)[0].strip() for line in text.splitlines() for e in line.split(",")]
    for number, entry in enumerate((e for e in entries if e), start=1):
        name, colon, token = entry.partition(":")
        name, token = name.strip(), token.strip()
        if not (colon and _NAME.match(name)):
            raise ReviewerTokensError(
                f"{source}: entry {number} is not name:token (names are letters, digits, "
                "._@- and at most 64 characters)"
            )
        if len(token) < MIN_TOKEN_CHARS:
            raise ReviewerTokensError(
                f"{source}: the token of {name} is shorter than {MIN_TOKEN_CHARS} characters"
            )
        if name in by_name:
            raise ReviewerTokensError(f"{source}: {name} is named twice")
        by_name[name] = token
    if not by_name:
        raise ReviewerTokensError(f"{source}: no reviewer tokens")
    return ReviewerTokens(by_name)


def load_tokens(env: Mapping[str, str], tokens_file: str | None) -> ReviewerTokens:
    """The tokens of ``tokens_file`` (or ``DOCPIPE_REVIEW_TOKENS_FILE``), else of
    ``DOCPIPE_REVIEW_TOKENS``.

    Raises:
        ReviewerTokensError: none given, the file is unreadable, or they are malformed.
    """
    path = tokens_file or env.get(TOKENS_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ReviewerTokensError(f"cannot read {path}: {exc.strerror}") from None
        return parse_tokens(text, source=path)
    if env.get(TOKENS_ENV):
        return parse_tokens(env[TOKENS_ENV], source=TOKENS_ENV)
    raise ReviewerTokensError(
        f"the review page needs reviewer tokens: set {TOKENS_ENV}=name:token,... or "
        f"{TOKENS_FILE_ENV} (or --tokens-file) to a file of name:token lines"
    )


def new_token() -> str:
    """A fresh reviewer token."""
    return secrets.token_urlsafe(32)


def ensure_dev_tokens(path: Path) -> tuple[str, str]:
    """The embedded stack's reviewer token file: one reviewer, made at first use.

    Returns:
        The reviewer's name and token.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".tmp")
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write("# reviewer:token of the development stack's review page\n")
            out.write(f"{DEV_REVIEWER}:{new_token()}\n")
        os.replace(staging, path)
    tokens = parse_tokens(path.read_text(encoding="utf-8"), source=str(path))
    name, token = next(iter(tokens.by_name.items()))
    return name, token


@dataclass(frozen=True, kw_only=True)
class Session:
    """A logged-in reviewer."""

    reviewer: str
    session_id: str
    expires: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SessionSigner:
    """Issues and verifies session cookies and their CSRF tokens with one HMAC key.

    Args:
        key: the HMAC key; a fresh random one by default.
        seconds: how long a session lasts.
    """

    def __init__(self, key: bytes | None = None, seconds: int = SESSION_SECONDS) -> None:
        self._key = key or secrets.token_bytes(32)
        self._seconds = seconds

    def _sign(self, purpose: str, payload: str) -> str:
        mac = hmac.new(self._key, f"{purpose}\n{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def issue(self, reviewer: str, now: float | None = None) -> str:
        """A cookie value naming ``reviewer``, signed, that expires."""
        expires = int((now if now is not None else time.time()) + self._seconds)
        payload = f"{reviewer}.{_b64(secrets.token_bytes(16))}.{expires}"
        return f"{payload}.{self._sign('session', payload)}"

    def verify(self, cookie: str, now: float | None = None) -> Session | None:
        """The session of a cookie value, or None when it is forged, malformed or old."""
        payload, dot, signature = cookie.rpartition(".")
        expected = self._sign("session", payload).encode()
        # Bytes: compare_digest refuses str that is not ASCII, and a cookie may be anything.
        if not dot or not hmac.compare_digest(signature.encode(), expected):
            return None
        parts = payload.rsplit(".", 2)
        if len(parts) != 3:
            return None
        reviewer, session_id, expires = parts
        # isascii(): isdigit() alone takes "²", which int() refuses.
        if not (_NAME.match(reviewer) and session_id and expires.isascii() and expires.isdigit()):
            return None
        if int(expires) < (now if now is not None else time.time()):
            return None
        return Session(reviewer=reviewer, session_id=session_id, expires=int(expires))

    def csrf_token(self, session: Session) -> str:
        """The CSRF token every form of ``session`` carries."""
        return self._sign("csrf", session.session_id)

    def csrf_ok(self, session: Session, token: str) -> bool:
        """Whether ``token`` is ``session``'s CSRF token (compared in constant time)."""
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())
