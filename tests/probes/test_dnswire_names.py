"""Names in answers are read lower-cased, with compression pointers taken from the raw bytes."""

from __future__ import annotations

from auditor.probes.dnswire import _read_name


def test_a_pointer_whose_low_byte_is_a_letter_code_is_followed_as_it_is() -> None:
    message = bytearray(0x60)
    message[0x45 : 0x45 + 9] = b"\x03FoO\x03BaR\x00"  # at 0x45, the code of "E"
    message[0x50:0x52] = b"\xc0\x45"
    data = bytes(message)
    assert _read_name(data, 0x50, data.lower()) == ((b"foo", b"bar"), 0x52)
    assert _read_name(data, 0x45, data.lower()) == ((b"foo", b"bar"), 0x4E)
