"""Signed PDFs made in the tests with pyHanko and a throwaway self-signed certificate.

Nothing here is trusted by anyone: the certificate is made per test session, and docpipe
never asks whether it is. The signer's name is a constant the tests look for, to prove
that no report carries it.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import io
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.pdfs import make_pdf

SIGNER_NAME = "Erika Mustermann Testsigner"
PAGES = 3


@dataclass(frozen=True)
class Credentials:
    key_pem: bytes
    cert_pem: bytes


@cache
def credentials() -> Credentials:
    """A self-signed certificate (a name only the tests use) and its key."""
    # RSA: pyHanko's stand-in time-stamping authority signs with RSA only.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIGNER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return Credentials(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


def _certificate() -> Any:
    """The throwaway certificate as pyHanko takes it (asn1crypto)."""
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509

    _, _, der = pem.unarmor(credentials().cert_pem)
    return asn1_x509.Certificate.load(der)


def _signer() -> Any:
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    store: Any = SimpleCertificateStore
    cert = _certificate()
    key = load_private_key_from_pemder_data(credentials().key_pem, passphrase=None)
    return signers.SimpleSigner(
        signing_cert=cert,
        signing_key=key,
        cert_registry=store.from_certs([cert]),
    )


def unsigned() -> bytes:
    return make_pdf(["text"] * PAGES)


def sign(data: bytes, field: str = "Signature1") -> bytes:
    """``data`` with one more signature, in a new field ``field``, as an incremental update.

    Callable from async tests too: pyHanko's signing runs its own event loop, here in a
    thread of its own.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(_sign, data, field).result()


def _sign(data: bytes, field: str) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    out = io.BytesIO()
    signers.sign_pdf(
        writer, signers.PdfSignatureMetadata(field_name=field), signer=_signer(), output=out
    )
    return out.getvalue()


def signed() -> bytes:
    """Signed once, nothing after: intact."""
    return sign(unsigned())


def byte_range(data: bytes) -> tuple[int, int, int, int]:
    """The last signature's /ByteRange, read from the bytes."""
    found = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    assert found, "no /ByteRange"
    first, length, second, second_length = (int(x) for x in found[-1])
    return first, length, second, second_length


def flipped_from(signed: bytes) -> bytes:
    """One byte inside the signed range changed (in the header's comment line, so that the
    file still parses): the digest no longer matches."""
    data = bytearray(signed)
    _, length, _, _ = byte_range(signed)
    offset = data.index(b"\n") + 2
    assert offset < length and data[offset - 1 : offset] == b"%"
    data[offset] ^= 0x01
    return bytes(data)


def edit_after(signed: bytes) -> bytes:
    """An incremental update, appended after signing, that draws on the first page."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer: Any = IncrementalPdfFileWriter(io.BytesIO(signed))
    page = writer.root["/Pages"].raw_get("/Kids")[0].get_object()
    drawing = writer.add_object(generic.StreamObject(stream_data=b"0 0 m 100 100 l S\n"))
    contents = page.raw_get("/Contents")
    if isinstance(contents.get_object(), generic.ArrayObject):
        parts = [*contents.get_object(), drawing]
    else:
        parts = [contents, drawing]
    page["/Contents"] = generic.ArrayObject(parts)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add_dss(signed: bytes) -> bytes:
    """A document security store (certificates for validation) appended after signing."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    out = io.BytesIO(signed)
    DocumentSecurityStore.add_dss(out, sig_contents=None, certs=[_certificate()], force_write=True)
    return out.getvalue()


def with_empty_field() -> bytes:
    """An unsigned document with one empty signature field, waiting for a signer."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields

    writer: Any = IncrementalPdfFileWriter(io.BytesIO(unsigned()))
    fields.append_signature_field(writer, fields.SigFieldSpec("Signature1", box=(50, 50, 250, 100)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add_timestamp(signed: bytes) -> bytes:
    """A document timestamp appended after signing, from a time-stamping authority that is
    the throwaway certificate itself (no network)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(_add_timestamp, signed).result()


def _add_timestamp(signed: bytes) -> bytes:
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    key = load_private_key_from_pemder_data(credentials().key_pem, passphrase=None)
    authority: Any = DummyTimeStamper(tsa_cert=_certificate(), tsa_key=key)
    stamper: Any = PdfTimeStamper(timestamper=authority)
    out = io.BytesIO()
    stamper.timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(signed)),
        "sha256",
        validation_context=None,
        validation_paths=[],
        output=out,
    )
    return out.getvalue()
