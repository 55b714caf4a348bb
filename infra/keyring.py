"""The keys docpipe encrypts Temporal payloads with: several by ID, one of them active.

New payloads are encrypted with the active key; every payload names its key's ID, so a
payload written before a rotation is still read with the key it was written with. The
:class:`Keyring` protocol is all the codec sees: a KMS-backed keyring can replace the two
kept here (docs/OPERATIONS.md, "Encryption").
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

KEY_BYTES = 32  # AES-256
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyringError(ValueError):
    """A keyring cannot be read or used; the message says which key or file."""


class UnknownKeyError(KeyringError):
    """A payload names a key the keyring does not hold."""

    def __init__(self, key_id: str, known: Iterable[str]) -> None:
        super().__init__(
            f"payload encrypted with key {key_id!r}, which the keyring does not hold "
            f"(it holds {', '.join(sorted(known)) or 'none'}): add that key to the keyring "
            "(DOCPIPE_CODEC_KEYRING_FILE or DOCPIPE_CODEC_KEYS); the task is retried"
        )
        self.key_id = key_id


class Keyring(Protocol):
    """Keys by ID, one of them active. Implementations must be thread-safe."""

    @property
    def active_key_id(self) -> str:
        """The ID of the key new payloads are encrypted with."""
        ...

    def key(self, key_id: str) -> bytes:
        """The 32-byte key ``key_id``.

        Raises:
            UnknownKeyError: the keyring does not hold it.
        """
        ...

    def key_ids(self) -> tuple[str, ...]:
        """The IDs of every key held (never the keys)."""
        ...


@dataclass(frozen=True, kw_only=True)
class StaticKeyring:
    """Keys given once (from the environment, or a test)."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        check_keys(self.keys, self.active)

    @property
    def active_key_id(self) -> str:
        """The ID of the key new payloads are encrypted with."""
        return self.active

    def key(self, key_id: str) -> bytes:
        """The key ``key_id``; :class:`UnknownKeyError` if it is not held."""
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKeyError(key_id, self.keys) from None

    def key_ids(self) -> tuple[str, ...]:
        """The IDs of every key held."""
        return tuple(sorted(self.keys))


class FileKeyring:
    """Keys from a JSON file ``{"active": "k2", "keys": {"k1": "<base64>", ...}}``.

    Rotation needs no restart: the file is read again when it changed, looked at every
    ``refresh_s`` when the active key is asked for (new payloads use the new active key
    within that time), and at once when a payload names a key not held (a workflow task
    that failed on an unknown key succeeds on its retry once the key is in the file).

    Raises:
        KeyringError: the file is missing or not a keyring.
    """

    def __init__(self, path: Path, *, refresh_s: float = 2.0) -> None:
        self.path = path
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._looked_at = time.monotonic()
        self._keyring = self._read()

    def _read(self) -> StaticKeyring:
        try:
            stat = self.path.stat()
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeyringError(
                f"cannot read the keyring file {self.path}: {exc.strerror}"
            ) from None
        except ValueError:
            raise KeyringError(f"the keyring file {self.path} is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), dict):
            raise KeyringError(
                f'the keyring file {self.path} must hold {{"active": ID, "keys": {{ID: base64}}}}'
            )
        keys = {str(k): decode_key(str(k), v) for k, v in document["keys"].items()}
        keyring = StaticKeyring(keys=keys, active=str(document.get("active", "")))
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        return keyring

    def _refresh_if_changed(self) -> None:
        with self._lock:
            self._looked_at = time.monotonic()
            try:
                stat = self.path.stat()
            except OSError:
                return  # keep the keys already read: a file being replaced is not an outage
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self._keyring = self._read()

    @property
    def active_key_id(self) -> str:
        """The active key of the file, read again if it changed (at most every
        ``refresh_s``)."""
        if time.monotonic() - self._looked_at >= self.refresh_s:
            # A half-written or broken file: keep encrypting with the keys already read.
            with contextlib.suppress(KeyringError):
                self._refresh_if_changed()
        return self._keyring.active

    def key(self, key_id: str) -> bytes:
        """The key ``key_id``, reading the file again first if it is not held.

        Raises:
            UnknownKeyError: not held, even by the file as it is now.
        """
        try:
            return self._keyring.key(key_id)
        except UnknownKeyError:
            self._refresh_if_changed()
            return self._keyring.key(key_id)

    def key_ids(self) -> tuple[str, ...]:
        """The IDs of every key in the file as it was last read."""
        return self._keyring.key_ids()


def check_keys(keys: Mapping[str, bytes], active: str) -> None:
    """Raise :class:`KeyringError` unless ``keys`` are well named AES-256 keys with
    ``active`` among them."""
    for key_id, key in keys.items():
        if not _KEY_ID.match(key_id):
            raise KeyringError(f"key ID {key_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
        if len(key) != KEY_BYTES:
            raise KeyringError(f"key {key_id!r} must be {KEY_BYTES} bytes (AES-256)")
    if active not in keys:
        raise KeyringError(
            f"the active key {active!r} is not among the keys ({', '.join(sorted(keys))})"
        )


def decode_key(key_id: str, encoded: object) -> bytes:
    """A key from its base64 text.

    Raises:
        KeyringError: not base64 (the key itself is never quoted).
    """
    if not isinstance(encoded, str):
        raise KeyringError(f"key {key_id!r} must be base64 text")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"key {key_id!r} is not valid base64") from None


def parse_key_entries(entries: Iterable[str]) -> dict[str, bytes]:
    """Keys from ``id:base64`` entries (``DOCPIPE_CODEC_KEYS``).

    Raises:
        KeyringError: an entry without an ID or a key.
    """
    keys: dict[str, bytes] = {}
    for entry in entries:
        key_id, colon, encoded = entry.partition(":")
        if not (key_id and colon and encoded):
            raise KeyringError("DOCPIPE_CODEC_KEYS entries are id:base64, comma-separated")
        keys[key_id.strip()] = decode_key(key_id.strip(), encoded.strip())
    return keys


def new_key() -> str:
    """A fresh random AES-256 key, base64."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def write_keyring_file(path: Path, keys: Mapping[str, str], active: str) -> None:
    """Write a keyring file readable by its owner only, replacing it atomically.

    Args:
        keys: key ID to base64 key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump({"active": active, "keys": dict(keys)}, out, indent=2)
        out.write("\n")
    os.replace(staging, path)


def ensure_dev_keyring(path: Path) -> Path:
    """The embedded stack's development keyring: created with one fresh key if missing."""
    if not path.exists():
        write_keyring_file(path, {"dev-1": new_key()}, "dev-1")
    return path
