"""Whether object keys are hashed follows encryption unless set, and the codec's switch
has the short form the docs name (``DOCPIPE_CODEC``)."""

from __future__ import annotations

import pytest

from infra.check_requests import check_request
from infra.settings import Settings
from infra.settings import SettingsError
from infra.settings_env import load_settings
from infra.settings_env import to_env
from pipeline.models import DocumentRef

_DOCUMENT = DocumentRef(bucket="documents", key="acme/secret plan.pdf", version_id="v1")


def test_object_keys_are_hashed_by_default_when_payloads_are_encrypted() -> None:
    settings = load_settings(env={})
    assert settings.codec.mode == "encrypt"
    assert settings.temporal.hash_object_keys is None
    assert settings.object_keys_hashed is True


def test_object_keys_stay_in_clear_by_default_without_encryption() -> None:
    assert load_settings(env={"DOCPIPE_CODEC_MODE": "none"}).object_keys_hashed is False


@pytest.mark.parametrize(
    ("mode", "explicit", "hashed"),
    [("encrypt", "false", False), ("none", "true", True), ("encrypt", "true", True)],
)
def test_an_explicit_setting_wins_over_the_codec_mode(
    mode: str, explicit: str, hashed: bool
) -> None:
    env = {"DOCPIPE_CODEC_MODE": mode, "DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS": explicit}
    assert load_settings(env=env).object_keys_hashed is hashed


def test_an_empty_setting_means_the_default() -> None:
    env = {"DOCPIPE_CODEC_MODE": "none", "DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS": ""}
    assert load_settings(env=env).temporal.hash_object_keys is None


def test_a_child_process_inherits_the_default_not_a_decision() -> None:
    # A child started with encryption switched off later must not keep hashing on.
    rendered = to_env(Settings())
    assert rendered["DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS"] == ""
    assert load_settings(env=rendered).temporal.hash_object_keys is None


def test_checks_started_with_hashing_go_by_a_workflow_id_without_the_key() -> None:
    request = check_request(load_settings(env={}), _DOCUMENT)
    assert request.hash_object_key is True
    assert _DOCUMENT.key not in request.workflow_id
    clear = check_request(load_settings(env={"DOCPIPE_CODEC_MODE": "none"}), _DOCUMENT)
    assert clear.workflow_id == _DOCUMENT.workflow_id


def test_the_short_form_docpipe_codec_switches_encryption_off() -> None:
    settings = load_settings(env={"DOCPIPE_CODEC": "none"})
    assert settings.codec.mode == "none"
    assert settings.object_keys_hashed is False


def test_the_short_form_and_the_full_name_may_agree() -> None:
    env = {"DOCPIPE_CODEC": "none", "DOCPIPE_CODEC_MODE": "none"}
    assert load_settings(env=env).codec.mode == "none"


def test_the_short_form_and_the_full_name_may_not_disagree() -> None:
    env = {"DOCPIPE_CODEC": "none", "DOCPIPE_CODEC_MODE": "encrypt"}
    with pytest.raises(SettingsError, match="DOCPIPE_CODEC='none' and DOCPIPE_CODEC_MODE"):
        load_settings(env=env)


def test_a_bad_short_form_names_the_mode() -> None:
    with pytest.raises(SettingsError, match="'off' is not encrypt or none"):
        load_settings(env={"DOCPIPE_CODEC": "off"})
