"""Reviewer tokens and the signed sessions the review page keeps reviewers in."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.review_auth import DEV_REVIEWER
from app.review_auth import ReviewerTokensError
from app.review_auth import SessionSigner
from app.review_auth import ensure_dev_tokens
from app.review_auth import load_tokens
from app.review_auth import parse_tokens

TOKEN = "t" * 30


def test_tokens_are_read_from_commas_or_lines_with_comments() -> None:
    tokens = parse_tokens(
        f"# team\nalice:{TOKEN}a, bob:{TOKEN}b\n\ncarol:{TOKEN}c # lead", source="x"
    )
    assert tokens.by_name == {"alice": TOKEN + "a", "bob": TOKEN + "b", "carol": TOKEN + "c"}
    assert tokens.reviewer_for(TOKEN + "b") == "bob"
    assert tokens.reviewer_for(TOKEN) is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "no reviewer tokens"),
        (f"alice {TOKEN}", "entry 1 is not name:token"),
        (f"al/ice:{TOKEN}", "entry 1 is not name:token"),
        ("alice:short", "shorter than 24"),
        (f"alice:{TOKEN}, alice:{TOKEN}x", "alice is named twice"),
    ],
)
def test_malformed_tokens_are_refused_with_the_entry_named(text: str, said: str) -> None:
    with pytest.raises(ReviewerTokensError, match=said):
        parse_tokens(text, source="DOCPIPE_REVIEW_TOKENS")


def test_without_tokens_the_page_does_not_start() -> None:
    with pytest.raises(ReviewerTokensError, match="needs reviewer tokens"):
        load_tokens({}, None)


def test_the_dev_token_file_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "review-tokens"
    name, token = ensure_dev_tokens(path)
    assert name == DEV_REVIEWER
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_dev_tokens(path) == (name, token)
    assert load_tokens({"DOCPIPE_REVIEW_TOKENS_FILE": str(path)}, None).reviewer_for(token) == name


def test_a_session_is_verified_until_it_expires_and_not_by_another_key() -> None:
    signer = SessionSigner(key=b"k" * 32, seconds=60)
    cookie = signer.issue("alice.smith", now=1000)
    session = signer.verify(cookie, now=1030)
    assert session is not None
    assert session.reviewer == "alice.smith"
    assert signer.verify(cookie, now=1061) is None
    assert SessionSigner(key=b"o" * 32).verify(cookie, now=1030) is None
    assert signer.verify("alice." + cookie.split(".", 2)[2], now=1030) is None
    assert signer.verify("alice.é.1.ü", now=1030) is None


def test_the_csrf_token_belongs_to_its_session() -> None:
    signer = SessionSigner()
    first = signer.verify(signer.issue("alice"))
    second = signer.verify(signer.issue("alice"))
    assert first is not None and second is not None
    assert signer.csrf_ok(first, signer.csrf_token(first))
    assert not signer.csrf_ok(first, signer.csrf_token(second))
    assert not signer.csrf_ok(first, "")
