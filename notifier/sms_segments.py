"""SMS segment counting: GSM-7 (with its extension table) or UCS-2.

A single GSM-7 message holds 160 septets, a concatenated part 153; UCS-2 holds 70, a part 67.
Extension characters (``^{}\\[~]|€`` and form feed) cost two septets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


class SmsEncoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SegmentCount:
    encoding: SmsEncoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def count_segments(text: str) -> SegmentCount:
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, SmsEncoding.GSM7
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, SmsEncoding.UCS2
    segments = 1 if units <= single else -(-units // part)
    return SegmentCount(encoding=encoding, units=units, segments=segments)
