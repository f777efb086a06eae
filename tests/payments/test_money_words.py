"""Amounts for people: CNY in capital numerals (大写金额) by the banks' rules; locale-aware money."""

import pytest

from payments.representations import cny_in_words, format_money

# (amount in fen, what a Chinese bank writes). The first three are the issue's; the rest are the
# examples of 《正确填写票据和结算凭证的基本规定》 and the boundaries of 万 and 亿.
CAPITALS = [
    (123400, "壹仟贰佰叁拾肆元整"),
    (123456, "壹仟贰佰叁拾肆元伍角陆分"),
    (10000500, "壹拾万零伍元整"),
    # zero digits: one 零 for a run of zeros, 零 after 元 when the 元 digit or the 角 is zero
    (140950, "壹仟肆佰零玖元伍角"),
    (600714, "陆仟零柒元壹角肆分"),
    (168032, "壹仟陆佰捌拾元零叁角贰分"),
    (10700053, "壹拾万柒仟元零伍角叁分"),
    (1640902, "壹万陆仟肆佰零玖元零贰分"),
    (32504, "叁佰贰拾伍元零肆分"),
    (101000, "壹仟零壹拾元整"),
    (1005, "壹拾元零伍分"),
    # 角 without 分: no 整 after 角; below one yuan only 角 and 分
    (123450, "壹仟贰佰叁拾肆元伍角"),
    (50, "伍角"),
    (5, "伍分"),
    (55, "伍角伍分"),
    (0, "零元整"),
    # 壹拾, never a bare 拾
    (1000, "壹拾元整"),
    (1500, "壹拾伍元整"),
    (100, "壹元整"),
    # 万 boundaries
    (999900, "玖仟玖佰玖拾玖元整"),
    (1000000, "壹万元整"),
    (1000100, "壹万零壹元整"),
    (1010000, "壹万零壹佰元整"),
    (1100000, "壹万壹仟元整"),
    (100000000, "壹佰万元整"),
    # 亿 boundaries
    (9999999999, "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    (10000000000, "壹亿元整"),
    (10000000100, "壹亿零壹元整"),
    (10001000000, "壹亿零壹万元整"),
    (10100000000, "壹亿零壹佰万元整"),
    (11000000000, "壹亿壹仟万元整"),
    (123456789012, "壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元零壹角贰分"),
    (100000000000000, "壹万亿元整"),
    (120000000000000, "壹万贰仟亿元整"),
    (-123400, "负壹仟贰佰叁拾肆元整"),
]


@pytest.mark.parametrize(("fen", "words"), CAPITALS)
def test_cny_in_words_follows_the_banks_rules(fen, words):
    assert cny_in_words(fen) == words


@pytest.mark.parametrize(
    ("minor", "currency", "language", "shown"),
    [
        (123450, "CNY", "zh-hans", "¥1,234.50"),
        (123450, "CNY", "en", "CN¥1,234.50"),
        (123450, "USD", "zh-hans", "US$1,234.50"),
        (123450, "USD", "en", "$1,234.50"),
        (1234, "JPY", "en", "¥1,234"),
        (1234, "KWD", "en", "KWD1.234"),
        (10234820, "EUR", "en", "€102,348.20"),
    ],
)
def test_format_money_uses_the_symbol_of_the_locale_and_the_iso_exponent(minor, currency, language, shown):
    assert format_money(minor, currency, language) == shown
