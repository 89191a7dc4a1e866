"""Phone numbers: everything the hotline stores or compares is E.164."""
from __future__ import annotations

import phonenumbers


def normalize_phone(raw: str | None, region: str) -> str | None:
    """`raw` as E.164 (`+8613800000001`), numbers without a +country code read in `region`; None if not valid."""
    text = (raw or "").strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def can_text(e164: str) -> bool:
    """True when `e164` may receive text messages (a mobile number, or one that may be mobile)."""
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def callback_number(raw: str | None, region: str, *, allow_foreign: bool, allow_premium_rate: bool) -> str | None:
    """A keyed-in number we may call back, as E.164; None when invalid, foreign or premium-rate (as configured)."""
    e164 = normalize_phone(raw, region)
    if e164 is None:
        return None
    number = phonenumbers.parse(e164, None)
    if not allow_foreign and phonenumbers.region_code_for_number(number) != region:
        return None
    kind = phonenumbers.number_type(number)
    if not allow_premium_rate and kind in (
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
    ):
        return None
    return e164
