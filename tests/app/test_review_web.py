"""``docpipe review serve`` on the command line: it needs reviewer tokens to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import cli


@pytest.fixture(autouse=True)
def _no_tokens_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCPIPE_REVIEW_TOKENS", raising=False)
    monkeypatch.delenv("DOCPIPE_REVIEW_TOKENS_FILE", raising=False)
    # ``run`` configures the process's logging; here that process is pytest's.
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)


def test_the_review_page_does_not_start_without_reviewer_tokens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.run(["review", "serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("docpipe: the review page needs reviewer tokens")
    assert err.count("\n") == 1


def test_a_short_token_stops_it_naming_the_file_and_reviewer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:short\n")
    assert cli.run(["review", "serve", "--tokens-file", str(tokens)]) == 2
    assert capsys.readouterr().err == (
        f"docpipe: {tokens}: the token of alice is shorter than 24 characters\n"
    )
