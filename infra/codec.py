"""What docpipe stores in Temporal, encrypted: the payload codec and the one data converter.

Every workflow input, activity result, heartbeat detail and query answer passes through
:class:`EncryptionCodec` on its way to the Temporal server: compressed (zlib), then
AES-256-GCM encrypted with the keyring's active key. The payload names its key ID in its
metadata (in clear, and bound to the ciphertext as associated data), so a payload is
always read with the key it was written with. Search attributes are not payloads the codec
sees: they stay in clear for the server to index (``pipeline/search_attributes.py``).

:func:`data_converter` is the one way docpipe builds a converter; every Temporal client
(and so every worker, which takes its client's) and the replayer use it.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter
from temporalio.converter import PayloadCodec

from infra.keyring import FileKeyring
from infra.keyring import Keyring
from infra.keyring import KeyringError
from infra.keyring import StaticKeyring
from infra.keyring import parse_key_entries
from infra.settings import CODEC_NONE
from infra.settings import CodecSettings
from infra.settings import SettingsError

ENCODING = b"binary/encrypted"
ENCODING_KEY = "encoding"
KEY_ID_KEY = "encryption-key-id"
COMPRESSION_KEY = "encryption-compression"
COMPRESSION = b"zlib"
_NONCE_BYTES = 12
# A decrypted payload inflates to at most this: a payload is never near it (Temporal's own
# limit is 2 MiB), and a crafted one must not exhaust the worker's or codec server's memory.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


class PayloadDecodeError(ValueError):
    """An encrypted payload cannot be read; the message names its key ID and why."""


class EncryptionCodec(PayloadCodec):
    """zlib, then AES-256-GCM with the keyring's active key; decoded by the key it names.

    Payloads without the encrypted encoding (written before encryption was turned on) pass
    through decoding unchanged; an encrypted one that cannot be read raises, never passes.
    """

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload with the active key."""
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt every encrypted payload by its key ID.

        Raises:
            UnknownKeyError: a payload names a key the keyring does not hold.
            PayloadDecodeError: a payload fails authentication or is malformed.
        """
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, compressed and encrypted with the active key."""
        key_id = self.keyring.active_key_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keyring.key(key_id)).encrypt(
            nonce, zlib.compress(payload.SerializeToString()), _associated(key_id)
        )
        return Payload(
            metadata={
                ENCODING_KEY: ENCODING,
                KEY_ID_KEY: key_id.encode(),
                COMPRESSION_KEY: COMPRESSION,
            },
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload as it was before :meth:`encrypt`; others unchanged."""
        if payload.metadata.get(ENCODING_KEY) != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_KEY, b"").decode("utf-8", "replace")
        if not key_id:
            raise PayloadDecodeError("encrypted payload without an encryption-key-id")
        if payload.metadata.get(COMPRESSION_KEY) != COMPRESSION:
            raise PayloadDecodeError(f"encrypted payload (key {key_id!r}) of unknown compression")
        key = self.keyring.key(key_id)
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            compressed = AESGCM(key).decrypt(nonce, sealed, _associated(key_id))
        except (InvalidTag, ValueError):
            raise PayloadDecodeError(
                f"payload encrypted with key {key_id!r} fails authentication: it was altered, "
                "or the keyring holds a different key under that ID"
            ) from None
        inflater = zlib.decompressobj()
        try:
            plain = inflater.decompress(compressed, MAX_DECOMPRESSED_BYTES)
        except zlib.error:
            raise PayloadDecodeError(f"payload (key {key_id!r}) does not decompress") from None
        if inflater.unconsumed_tail:
            raise PayloadDecodeError(f"payload (key {key_id!r}) inflates beyond the limit")
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def _associated(key_id: str) -> bytes:
    # Binds the metadata the decoder trusts to the ciphertext: a payload relabelled with
    # another key ID or compression fails authentication.
    return ENCODING + b"|" + key_id.encode() + b"|" + COMPRESSION


def keyring_for(settings: CodecSettings) -> Keyring | None:
    """The keyring the settings name; None when encryption is off.

    Raises:
        SettingsError: encryption is on and no keyring is set, or it cannot be read.
    """
    if settings.mode == CODEC_NONE:
        return None
    if not (settings.keyring_file or settings.keys):
        raise SettingsError(
            "no codec keyring: set DOCPIPE_CODEC_KEYRING_FILE (or DOCPIPE_CODEC_KEYS and "
            "DOCPIPE_CODEC_ACTIVE_KEY), or DOCPIPE_CODEC_MODE=none to store payloads in clear"
        )
    try:
        if settings.keyring_file:
            return FileKeyring(Path(settings.keyring_file))
        return StaticKeyring(
            keys=parse_key_entries(settings.keys), active=settings.active_key or ""
        )
    except KeyringError as exc:
        raise SettingsError(f"codec keyring: {exc}") from None


def data_converter(settings: CodecSettings) -> DataConverter:
    """The data converter of every Temporal client docpipe builds.

    Raises:
        SettingsError: encryption is on and there is no usable keyring.
    """
    keyring = keyring_for(settings)
    if keyring is None:
        return DataConverter.default
    return dataclasses.replace(DataConverter.default, payload_codec=EncryptionCodec(keyring))


def describe_keyring(settings: CodecSettings) -> str:
    """One line for ``docpipe config``: the key IDs and the active one, never the keys."""
    if settings.mode == CODEC_NONE:
        return "encryption off (DOCPIPE_CODEC_MODE=none): payloads are stored in clear"
    try:
        keyring = keyring_for(settings)
    except SettingsError as exc:
        return str(exc)
    assert keyring is not None
    return f"encryption keys {', '.join(keyring.key_ids())} (active {keyring.active_key_id})"
