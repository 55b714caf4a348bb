"""Where the review page accepts POSTs from, and when its cookie is for HTTPS only."""

from __future__ import annotations

from app.review_server import ServeConfig


def test_on_loopback_posts_come_from_either_name_of_it_and_cookies_go_over_http() -> None:
    config = ServeConfig(port=8236).page_config()
    assert config.origins == ("http://127.0.0.1:8236", "http://localhost:8236")
    assert not config.secure_cookies


def test_behind_a_tls_proxy_posts_come_from_its_origin_only_and_cookies_are_secure() -> None:
    config = ServeConfig(port=8236, public_url="https://review.example.com/").page_config()
    assert config.origins == ("https://review.example.com",)
    assert config.secure_cookies
