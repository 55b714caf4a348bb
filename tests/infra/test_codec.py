"""The payload codec: what Temporal stores is sealed, and read back only with its key."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from infra.codec import ENCODING
from infra.codec import KEY_ID_KEY
from infra.codec import EncryptionCodec
from infra.codec import PayloadDecodeError
from infra.codec import data_converter
from infra.codec import describe_keyring
from infra.codec import keyring_for
from infra.keyring import FileKeyring
from infra.keyring import StaticKeyring
from infra.keyring import UnknownKeyError
from infra.keyring import write_keyring_file
from infra.settings import CodecSettings
from infra.settings import SettingsError

_K1, _K2 = os.urandom(32), os.urandom(32)
_SECRET_TEXT = "documents/acme/contracts/secret-customer.pdf"


def _payload(text: str = _SECRET_TEXT) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"key": text}).encode())


def _codec(active: str = "k1", **keys: bytes) -> EncryptionCodec:
    return EncryptionCodec(StaticKeyring(keys=keys or {"k1": _K1}, active=active))


async def test_a_payload_round_trips_and_is_sealed_with_the_active_key_id() -> None:
    codec = _codec()
    (sealed,) = await codec.encode([_payload()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_KEY] == b"k1"
    assert _SECRET_TEXT.encode() not in sealed.data
    assert await codec.decode([sealed]) == [_payload()]


async def test_a_flipped_byte_fails_authentication_naming_the_key() -> None:
    codec = _codec()
    (sealed,) = await codec.encode([_payload()])
    tampered = bytearray(sealed.data)
    tampered[-5] ^= 0x01
    sealed.data = bytes(tampered)
    with pytest.raises(PayloadDecodeError, match="'k1' fails authentication"):
        await codec.decode([sealed])


async def test_a_payload_relabelled_with_another_key_id_fails_authentication() -> None:
    codec = _codec(k1=_K1, k2=_K1)
    (sealed,) = await codec.encode([_payload()])
    sealed.metadata[KEY_ID_KEY] = b"k2"
    with pytest.raises(PayloadDecodeError, match="fails authentication"):
        await codec.decode([sealed])


async def test_an_unknown_key_id_fails_naming_it_and_never_passes_through() -> None:
    (sealed,) = await _codec("k2", k2=_K2).encode([_payload()])
    with pytest.raises(UnknownKeyError, match="'k2'") as error:
        await _codec().decode([sealed])
    assert error.value.key_id == "k2"


async def test_after_a_rotation_old_payloads_decode_by_their_key_and_new_ones_use_the_new_key() -> (
    None
):
    (old,) = await _codec("k1", k1=_K1).encode([_payload("old")])
    rotated = _codec("k2", k1=_K1, k2=_K2)
    (new,) = await rotated.encode([_payload("new")])
    assert new.metadata[KEY_ID_KEY] == b"k2"
    assert await rotated.decode([old, new]) == [_payload("old"), _payload("new")]


async def test_clear_payloads_written_before_encryption_pass_decoding_unchanged() -> None:
    assert await _codec().decode([_payload()]) == [_payload()]


async def test_a_payload_that_inflates_beyond_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("infra.codec.MAX_DECOMPRESSED_BYTES", 100)
    codec = _codec()
    (sealed,) = await codec.encode([_payload("x" * 1000)])
    with pytest.raises(PayloadDecodeError, match="beyond the limit"):
        await codec.decode([sealed])


def _keyring_file(path: Path, active: str, **keys: bytes) -> Path:
    write_keyring_file(path, {k: base64.b64encode(v).decode() for k, v in keys.items()}, active)
    return path


async def test_a_key_added_to_the_keyring_file_is_found_without_a_restart(tmp_path: Path) -> None:
    path = _keyring_file(tmp_path / "keyring.json", "k1", k1=_K1)
    reader = EncryptionCodec(FileKeyring(path))
    (sealed,) = await _codec("k2", k2=_K2).encode([_payload()])
    with pytest.raises(UnknownKeyError):
        await reader.decode([sealed])
    _keyring_file(path, "k1", k1=_K1, k2=_K2)
    assert await reader.decode([sealed]) == [_payload()]


def test_the_keyring_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = _keyring_file(tmp_path / "keyring.json", "k1", k1=_K1)
    assert path.stat().st_mode & 0o077 == 0


async def test_the_data_converter_encrypts_what_it_serializes(tmp_path: Path) -> None:
    path = _keyring_file(tmp_path / "keyring.json", "k1", k1=_K1)
    converter = data_converter(CodecSettings(keyring_file=str(path)))
    (payload,) = await converter.encode([{"key": _SECRET_TEXT}])
    assert payload.metadata[KEY_ID_KEY] == b"k1"
    assert await converter.decode([payload]) == [{"key": _SECRET_TEXT}]


def test_encryption_off_is_the_default_converter_and_only_when_asked() -> None:
    assert data_converter(CodecSettings(mode="none")) is DataConverter.default
    with pytest.raises(SettingsError, match="no codec keyring"):
        data_converter(CodecSettings())


def test_keys_from_the_environment_make_a_keyring_with_their_active_key() -> None:
    encoded = base64.b64encode(_K1).decode()
    keyring = keyring_for(CodecSettings(keys=(f"k1:{encoded}",), active_key="k1"))
    assert keyring is not None
    assert keyring.key("k1") == _K1 and keyring.active_key_id == "k1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "aes"}, "DOCPIPE_CODEC_MODE"),
        ({"keys": ("k1:" + base64.b64encode(_K1).decode(),), "active_key": "k9"}, "'k9'"),
        ({"keys": ("k1:bm90IDMyIGJ5dGVz",), "active_key": "k1"}, "32 bytes"),
        ({"keys": ("k1",), "active_key": "k1"}, "id:base64"),
        ({"keys": ("k1:" + base64.b64encode(_K1).decode(),), "keyring_file": "x"}, "not both"),
    ],
)
def test_unusable_codec_settings_stop_at_start_with_the_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        CodecSettings(**fields)  # type: ignore[arg-type]


def test_the_description_names_key_ids_and_never_keys(tmp_path: Path) -> None:
    path = _keyring_file(tmp_path / "keyring.json", "k2", k1=_K1, k2=_K2)
    line = describe_keyring(CodecSettings(keyring_file=str(path)))
    assert line == "encryption keys k1, k2 (active k2)"
    assert base64.b64encode(_K1).decode() not in line


async def test_a_rotated_active_key_is_used_without_a_restart(tmp_path: Path) -> None:
    path = _keyring_file(tmp_path / "keyring.json", "k1", k1=_K1)
    codec = EncryptionCodec(FileKeyring(path, refresh_s=0))
    (before,) = await codec.encode([_payload()])
    _keyring_file(path, "k2", k1=_K1, k2=_K2)
    (after,) = await codec.encode([_payload()])
    assert (before.metadata[KEY_ID_KEY], after.metadata[KEY_ID_KEY]) == (b"k1", b"k2")
    assert await codec.decode([before, after]) == [_payload(), _payload()]
