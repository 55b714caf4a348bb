"""Sensitive-data detection in page text: counts and masked samples, never raw values.

Runs inside the parser processes, on the text of one page. What leaves this module is a
count per type and a few masked samples (``j***@e***.com``, ``**** **** **** 1234``): the
raw values stay in the process that read the page.

Detectors, in the order they claim text (a span claimed by one is hidden from the next,
so an IBAN's digits are never also counted as a card number or a phone number):

- ``email``: ``local@domain.tld``.
- ``iban``: two letters, two check digits, 11-30 letters/digits (printed in groups of
  four or compact), valid only when the ISO 13616 mod-97 check gives 1.
- ``payment_card``: 13-19 digits (optionally grouped by spaces or dashes) starting with a
  card network's digit (2-6), valid only when the Luhn check passes.
- ``us_ssn``: ``AAA-GG-SSSS`` with the dashes; area 000, 666 and 900-999, group 00 and
  serial 0000 are never issued and do not match. Undashed nine-digit numbers are not
  matched (too many of them are something else).
- ``phone``: an international number (``+`` and 8-15 digits) or a North American one
  (``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

SENSITIVE_TYPES = ("email", "phone", "iban", "payment_card", "us_ssn")
# Masked samples kept per type and page: enough to recognise what was found.
MAX_SAMPLES_PER_PAGE = 3

_EMAIL = re.compile(
    r"(?<![\w.+-])([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*)"
    r"\.([A-Za-z]{2,24})(?![\w-])"
)
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![\d-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d(?:[ .-]?\(?\d\)?){7,14}"
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (payment card numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN (spaces allowed)."""
    compact = iban.replace(" ", "").upper()
    if not (15 <= len(compact) <= 34) or not compact.isalnum() or not compact.isascii():
        return False
    if not (compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def mask_email(local: str, domain: str, tld: str) -> str:
    """An address as a sample that shows its shape, not the person."""
    return f"{local[0]}***@{domain[0]}***.{tld}"


def _mask_tail(value: str, keep: int) -> str:
    """Digits and letters become ``*`` except the last ``keep``; separators stay."""
    total = sum(1 for c in value if c.isalnum())
    seen = 0
    out = []
    for char in value:
        if char.isalnum():
            seen += 1
            out.append(char if seen > total - keep else "*")
        else:
            out.append(char)
    return "".join(out)


def mask_card(digits: str) -> str:
    """A card number as a sample: the last four digits only."""
    return "**** **** **** " + digits[-4:]


def mask_iban(compact: str) -> str:
    """An IBAN as a sample: its country and last four characters only."""
    masked = compact[:2] + "*" * (len(compact) - 6) + compact[-4:]
    return " ".join(masked[i : i + 4] for i in range(0, len(masked), 4))


@dataclass
class SensitiveFindings:
    """What one page holds: counts by type, and a few masked samples per type."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, masked: str) -> None:
        """Count one finding, keeping a few distinct masked samples per type."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        samples = self.samples.setdefault(kind, [])
        if len(samples) < MAX_SAMPLES_PER_PAGE and masked not in samples:
            samples.append(masked)


def _claim(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the (ordered, disjoint) spans blanked out, in one pass.

    Blanked with newlines: the same length, and a newline breaks every pattern.
    """
    if not spans:
        return text
    pieces = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append("\n" * (end - start))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _longest_valid(
    candidate: str, separators: str, min_length: int, valid: Callable[[str], bool]
) -> tuple[str, int] | None:
    """The longest run of leading groups of ``candidate`` that is valid when joined.

    A pattern may run into a neighbouring word or number ("... 1111 1111 12"); dropping
    trailing groups finds the value inside. Returns the joined value and the characters
    of ``candidate`` it spans.
    """
    groups = re.split(f"([{separators}])", candidate)
    # groups alternates value, separator, value, ...; keep whole values only.
    for end in range(len(groups), 0, -2):
        values = groups[:end:2]
        joined = "".join(values)
        if len(joined) < min_length:
            return None
        if valid(joined):
            return joined, len("".join(groups[:end]))
    return None


# A detector looks at one match: None when it is not a finding, else the masked value and
# how many characters of the match the finding spans.
_Detector = Callable[[re.Match[str]], tuple[str, int] | None]


def _email(match: re.Match[str]) -> tuple[str, int] | None:
    return mask_email(match.group(1), match.group(2), match.group(3)), len(match.group(0))


def _iban(match: re.Match[str]) -> tuple[str, int] | None:
    found = _longest_valid(match.group(0), " ", 15, iban_valid)
    return (mask_iban(found[0]), found[1]) if found else None


def _card(match: re.Match[str]) -> tuple[str, int] | None:
    found = _longest_valid(
        match.group(0), " -", 13, lambda digits: len(digits) <= 19 and luhn_valid(digits)
    )
    return (mask_card(found[0]), found[1]) if found else None


def _ssn(match: re.Match[str]) -> tuple[str, int] | None:
    if not _ssn_valid(*match.groups()):
        return None
    return "***-**-" + match.group(3), len(match.group(0))


def _phone(match: re.Match[str]) -> tuple[str, int] | None:
    return _mask_tail(match.group(0), 2), len(match.group(0))


# (type, pattern, detector, whether a match that fails validation still hides its text:
# an IBAN with a bad checksum is not a card number, a 16-digit number is not a phone).
_DETECTORS: tuple[tuple[str, re.Pattern[str], _Detector, bool], ...] = (
    ("email", _EMAIL, _email, False),
    ("iban", _IBAN, _iban, True),
    ("payment_card", _CARD, _card, True),
    ("us_ssn", _SSN, _ssn, False),
    ("phone", _PHONE, _phone, False),
)


def find_sensitive(text: str) -> SensitiveFindings:
    """Find sensitive values in one page's text. Returns counts and masked samples only,
    each by type in the order of the type names (as results and reports hold them)."""
    found = SensitiveFindings()
    for kind, pattern, detect, claim_invalid in _DETECTORS:
        claimed: list[tuple[int, int]] = []
        for match in pattern.finditer(text):
            finding = detect(match)
            if finding is not None:
                masked, length = finding
                found.add(kind, masked)
                claimed.append((match.start(), match.start() + length))
            elif claim_invalid:
                claimed.append((match.start(), match.end()))
        text = _claim(text, claimed)
    return SensitiveFindings(
        dict(sorted(found.counts.items())), dict(sorted(found.samples.items()))
    )


def joined_up_to(texts: Iterable[str], max_chars: int) -> str:
    """The non-empty ``texts``, one a line, cut once ``max_chars`` characters are taken:
    what the search reads of a hostile document's many or huge values. ``texts`` is not
    drawn from again once the bound is reached."""
    parts: list[str] = []
    left = max_chars
    for text in texts:
        if text:
            parts.append(text[:left])
            left -= len(parts[-1])
        if left <= 0:
            break
    return "\n".join(parts)
