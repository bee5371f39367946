"""Masking of personal data (个人信息) for roles that may not see it."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """Keep the first 3 and last 4 digits: ``13812345678`` → ``138****5678``.

    >>> mask_phone("13812345678")
    '138****5678'
    """
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str | None:
    """Keep the family name: ``张三丰`` → ``张**``.

    >>> mask_name("张三丰")
    '张**'
    """
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)
