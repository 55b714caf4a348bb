"""Kept only for two test modules that are being split elsewhere and still import from
here; delete it once they import from the modules named for what they hold
(``polling``, ``checks``, ``settings``)."""

from tests.support.checks import start_check
from tests.support.polling import async_wait_for, wait_for
from tests.support.settings import with_pipeline

__all__ = ["async_wait_for", "start_check", "wait_for", "with_pipeline"]
