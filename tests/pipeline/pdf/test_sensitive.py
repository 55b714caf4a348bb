"""Sensitive-data detection: what is found, what must not be, and what leaves (masks only)."""

from __future__ import annotations

import pytest

from pipeline.pdf.sensitive import MAX_SAMPLES_PER_PAGE
from pipeline.pdf.sensitive import SENSITIVE_TYPES
from pipeline.pdf.sensitive import find_sensitive
from pipeline.pdf.sensitive import iban_valid
from pipeline.pdf.sensitive import luhn_valid
from tests.support.feature_pdfs import DECOYS
from tests.support.feature_pdfs import SEEDED


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),  # Visa test number
        ("5500000000000004", True),  # Mastercard test number
        ("378282246310005", True),  # American Express test number
        ("4111111111111112", False),
        ("1234567812345678", False),
        ("", False),
        ("4111 1111", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("FR1420041010050500013M02606", True),
        ("DE88 3704 0044 0532 0130 00", False),  # check digits off by one
        ("GB82WEST12345698765433", False),
        ("DE89", False),
        ("1289 3704 0044 0532 0130 00", False),
    ],
)
def test_iban_checksum(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


def test_every_seeded_value_is_found_with_its_mask() -> None:
    text = "\n".join(f"Value: {value}" for values in SEEDED.values() for value, _ in values)
    found = find_sensitive(text)
    assert found.counts == {kind: len(values) for kind, values in SEEDED.items()}
    for kind, values in SEEDED.items():
        assert found.samples[kind] == [masked for _, masked in values][:MAX_SAMPLES_PER_PAGE]
    assert set(found.counts) <= set(SENSITIVE_TYPES)


@pytest.mark.parametrize("line", DECOYS)
def test_decoys_are_not_found(line: str) -> None:
    found = find_sensitive(line)
    assert found.counts == {}, f"{line!r} gave {found.counts}"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail me: a.b+tag@sub.example.co.uk.", "email"),
        ("Card 4111-1111-1111-1111 expires", "payment_card"),
        ("Amex 3782 822463 10005", "payment_card"),
        ("compact 4111111111111111.", "payment_card"),
        ("IBAN FR14 2004 1010 0505 0001 3M02 606 for rent", "iban"),
        ("ssn: 078-05-1120", "us_ssn"),
        ("call +1 (555) 010-9999 now", "phone"),
        ("call 555.010.9999", "phone"),
        ("tel. +44 20 7946 0958", "phone"),
    ],
)
def test_formats(text: str, kind: str) -> None:
    assert find_sensitive(text).counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "Total 1,234.56; due 2026-01-15; ref 20260115-001",
        "build 4.111.111.111 and version 10.2.3",
        "ISBN 978-3-16-148410-0",
        "SSN-like 900-12-3456, 123-00-4567, 123-45-0000",
        "ZIP 12345-6789 and 123456789",
        "1234 5678 9012 3456 (Luhn fails)",
    ],
)
def test_ordinary_numbers_are_not_found(text: str) -> None:
    assert find_sensitive(text).counts == {}


def test_a_value_is_counted_once_under_one_type() -> None:
    # An IBAN's digits are not also a card number or a phone number.
    found = find_sensitive("Pay to DE89 3704 0044 0532 0130 00 today")
    assert found.counts == {"iban": 1}


def test_a_valid_value_next_to_other_digits_is_still_found() -> None:
    found = find_sensitive("card 4111 1111 1111 1111 12 pcs")
    assert found.counts == {"payment_card": 1}
    assert found.samples["payment_card"] == ["**** **** **** 1111"]


def test_findings_come_by_type_in_the_order_of_the_type_names() -> None:
    # As page results and reports hold them, whatever order the detectors run in.
    found = find_sensitive("\n".join(value for values in SEEDED.values() for value, _ in values))
    assert list(found.counts) == sorted(SEEDED)
    assert list(found.samples) == sorted(SEEDED)


def test_samples_are_capped_and_counts_exact() -> None:
    emails = " ".join(f"user{i}@host{i}.example.com" for i in range(10))
    found = find_sensitive(emails)
    assert found.counts == {"email": 10}
    # Masks of different addresses may coincide; samples stay few and distinct.
    assert len(found.samples["email"]) <= MAX_SAMPLES_PER_PAGE
    assert len(set(found.samples["email"])) == len(found.samples["email"])


def test_raw_values_never_leave() -> None:
    text = "\n".join(value for values in SEEDED.values() for value, _ in values)
    found = find_sensitive(text)
    rendered = repr(found)
    for values in SEEDED.values():
        for value, _ in values:
            assert value not in rendered
            # Not even the digits without their separators.
            compact = "".join(c for c in value if c.isalnum())
            assert compact not in rendered.replace(" ", "").replace("-", "")
