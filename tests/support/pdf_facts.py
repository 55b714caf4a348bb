"""Facts about a PDF computed without docpipe: expectations for the real-world corpus.

Everything here reads the file's own structures with pypdf's low-level objects (the page
tree, resources, annotations, name trees, the encryption dictionary) and implements the
password checks of the PDF specification directly, so that a test compares docpipe with
an independent reading rather than with itself.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject
from pypdf.generic import DictionaryObject
from pypdf.generic import IndirectObject

# The password padding of the standard security handler (ISO 32000-1, 7.6.3.3).
_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def _hash_r6(password: bytes, salt: bytes, udata: bytes) -> bytes:
    """ISO 32000-2 algorithm 2.B."""
    from cryptography.hazmat.primitives.ciphers import Cipher
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.ciphers import modes

    k = hashlib.sha256(password + salt + udata).digest()
    rounds = 0
    while True:
        encryptor = Cipher(algorithms.AES(k[:16]), modes.CBC(k[16:32])).encryptor()
        e = encryptor.update((password + k + udata) * 64) + encryptor.finalize()
        k = (hashlib.sha256, hashlib.sha384, hashlib.sha512)[sum(e[:16]) % 3](e).digest()
        rounds += 1
        if rounds >= 64 and e[-1] <= rounds - 32:
            return k[:32]


def empty_user_password_opens(reader: PdfReader) -> bool:
    """Whether the empty string is the user password (algorithms 6 and 11, and 2.B)."""
    # Plain dictionary access on pypdf's objects: typed loosely on purpose.
    encrypt: Any = reader.trailer["/Encrypt"].get_object()
    revision = int(encrypt["/R"])
    u_value: bytes = encrypt["/U"].original_bytes
    if revision == 5:
        return hashlib.sha256(u_value[32:40]).digest() == u_value[:32]
    if revision >= 6:
        return _hash_r6(b"", u_value[32:40], b"") == u_value[:32]
    ids: Any = reader.trailer.get("/ID")
    id0: bytes = ids[0].original_bytes if ids else b""
    digest = hashlib.md5(
        _PAD + encrypt["/O"].original_bytes + struct.pack("<i", int(encrypt["/P"])) + id0
    )
    if revision >= 4 and not bool(encrypt.get("/EncryptMetadata", True)):
        digest.update(b"\xff" * 4)
    version = int(encrypt.get("/V", 0))
    length = 5 if revision == 2 else 16 if version == 4 else int(encrypt.get("/Length", 40)) // 8
    key = digest.digest()
    if revision >= 3:
        for _ in range(50):
            key = hashlib.md5(key[:length]).digest()
    key = key[:length]
    if revision == 2:
        return _rc4(key, _PAD) == u_value
    check = _rc4(key, hashlib.md5(_PAD + id0).digest())
    for i in range(1, 20):
        check = _rc4(bytes(b ^ i for b in key), check)
    return check[:16] == u_value[:16]


def _resolve(value: Any) -> Any:
    return value.get_object() if isinstance(value, IndirectObject) else value


@dataclass
class PageFacts:
    rotation: int
    images: int
    widgets: int
    file_attachments: int


@dataclass
class PdfFacts:
    header_version: str
    encrypted: bool
    empty_user_password: bool
    page_count: int = 0
    pages: list[PageFacts] = field(default_factory=list)
    acroform: bool = False
    xfa: bool = False
    embedded_files: int = 0
    catalog_version: str | None = None

    @property
    def version(self) -> str:
        """The header's version, unless the catalog's /Version names a later one."""
        return max(self.header_version, self.catalog_version or "")


def _image_count(resources: Any, seen: set[int]) -> int:
    """Image XObjects in a resource dictionary, also inside form XObjects."""
    resources = _resolve(resources)
    if not isinstance(resources, DictionaryObject):
        return 0
    xobjects = _resolve(resources.get("/XObject"))
    if not isinstance(xobjects, DictionaryObject):
        return 0
    count = 0
    for reference in xobjects.values():
        if isinstance(reference, IndirectObject):
            if reference.idnum in seen:
                continue
            seen.add(reference.idnum)
        xobject = _resolve(reference)
        if xobject.get("/Subtype") == "/Image":
            count += 1
        elif xobject.get("/Subtype") == "/Form":
            count += _image_count(xobject.get("/Resources"), seen)
    return count


def _inline_images(page: DictionaryObject) -> int:
    contents = _resolve(page.get("/Contents"))
    streams = contents if isinstance(contents, ArrayObject) else [contents] if contents else []
    data = b"".join(_resolve(s).get_data() for s in streams)
    return len(re.findall(rb"(?:^|\s)BI\s", data))


def _pages(reader: PdfReader) -> list[PageFacts]:
    """Walk the page tree, carrying the inheritable /Rotate and /Resources down."""
    found: list[PageFacts] = []
    seen: set[int] = set()

    def walk(node: Any, rotate: Any, resources: Any) -> None:
        if isinstance(node, IndirectObject):
            assert node.idnum not in seen, f"page tree cycle at object {node.idnum}"
            seen.add(node.idnum)
        current = _resolve(node)
        rotate = current.get("/Rotate", rotate)
        resources = current.get("/Resources", resources)
        kind = current.get("/Type")
        if kind == "/Pages" or (kind != "/Page" and "/Kids" in current):
            for kid in _resolve(current["/Kids"]):
                walk(kid, rotate, resources)
            return
        annotations = [_resolve(a) for a in _resolve(current.get("/Annots")) or []]
        subtypes = [a.get("/Subtype") for a in annotations if isinstance(a, DictionaryObject)]
        found.append(
            PageFacts(
                rotation=int(_resolve(rotate) or 0) % 360,
                images=_image_count(resources, set()) + _inline_images(current),
                widgets=subtypes.count("/Widget"),
                file_attachments=subtypes.count("/FileAttachment"),
            )
        )

    root: Any = reader.trailer["/Root"]
    walk(root.raw_get("/Pages"), 0, None)
    return found


def _name_tree_entries(node: Any) -> int:
    node = _resolve(node)
    if not isinstance(node, DictionaryObject):
        return 0
    names = _resolve(node.get("/Names")) or []
    return len(names) // 2 + sum(
        _name_tree_entries(kid) for kid in _resolve(node.get("/Kids")) or []
    )


def pdf_facts(path: Path) -> PdfFacts:
    """What the file itself says, read without docpipe."""
    header = re.search(rb"%PDF-(\d\.\d)", path.read_bytes()[:1024])
    assert header is not None, f"{path.name}: no PDF header"
    reader = PdfReader(path)
    encrypted = "/Encrypt" in reader.trailer
    facts = PdfFacts(
        header_version=header.group(1).decode(),
        encrypted=encrypted,
        empty_user_password=encrypted and empty_user_password_opens(reader),
    )
    if encrypted and not reader.decrypt(""):
        return facts  # the structure below is out of reach without the password
    root: Any = reader.trailer["/Root"].get_object()
    catalog_version = str(root.get("/Version", "")).lstrip("/")
    facts.catalog_version = catalog_version if re.fullmatch(r"\d\.\d", catalog_version) else None
    facts.pages = _pages(reader)
    facts.page_count = len(facts.pages)
    declared = int(_resolve(root["/Pages"])["/Count"])
    assert declared == facts.page_count, f"{path.name}: /Count {declared}, tree {facts.page_count}"
    acroform = _resolve(root.get("/AcroForm"))
    if isinstance(acroform, DictionaryObject):
        facts.acroform = bool(_resolve(acroform.get("/Fields")))
        facts.xfa = "/XFA" in acroform
    names = _resolve(root.get("/Names"))
    if isinstance(names, DictionaryObject):
        facts.embedded_files = _name_tree_entries(names.get("/EmbeddedFiles"))
    return facts


def revision_ends(data: bytes) -> list[int]:
    """Where each revision of a file ends, read from its bytes: just past each
    ``startxref <offset> %%EOF`` (and its end of line), without the first-page section of a
    linearized file, which is part of the original revision."""
    ends = [m.end() for m in re.finditer(rb"startxref\s+\d+\s+%%EOF(?:\r\n|\r|\n)?", data)]
    linearized = re.search(rb"/Linearized\s", data[:1024]) is not None
    if linearized and len(ends) > 1:
        ends = ends[1:]
    return ends


def xmp_claims(reader: PdfReader) -> dict[str, str | None]:
    """``pdfaid:part``, ``pdfaid:conformance`` and ``pdfuaid:part`` as written in the XMP
    packet's bytes (attribute or element form), found by pattern, not by an XML parser."""
    root: Any = reader.trailer["/Root"].get_object()
    metadata = _resolve(root.get("/Metadata"))
    claims: dict[str, str | None] = dict.fromkeys(("pdfa_part", "pdfa_conformance", "pdfua_part"))
    if metadata is None:
        return claims
    packet = metadata.get_data()
    for key, prefix, name in (
        ("pdfa_part", b"pdfaid", b"part"),
        ("pdfa_conformance", b"pdfaid", b"conformance"),
        ("pdfua_part", b"pdfuaid", b"part"),
    ):
        found = re.search(
            rb"%s:%s\s*=\s*[\"']([^\"']*)[\"']|<%s:%s>([^<]*)<" % (prefix, name, prefix, name),
            packet,
        )
        if found:
            claims[key] = (found.group(1) or found.group(2) or b"").decode().strip()
    return claims
