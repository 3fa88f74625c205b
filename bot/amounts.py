"""Reads a recruitment fee the way workers write it: "80 triệu", "80,000,000 VND", "$3,000", "50万円",
"Rp 30.000.000", "1.5 million pesos", "၅၀ သိန်း", "2 triệu 500 nghìn"; converts it to yen with the dated table."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.flowbook import CurrencyTable
from bot.text import ascii_digits, clean

# Words that multiply the number before them. Longer words are tried first.
MULTIPLIERS: dict[str, float] = {
    "百万": 1e6, "千万": 1e7, "万": 1e4, "萬": 1e4, "千": 1e3, "億": 1e8, "亿": 1e8, "百": 1e2,
    "triệu": 1e6, "trieu": 1e6, "tr": 1e6, "nghìn": 1e3, "nghin": 1e3, "ngàn": 1e3, "ngan": 1e3, "tỷ": 1e9, "ty": 1e9,
    "million": 1e6, "millions": 1e6, "mil": 1e3, "millón": 1e6, "millones": 1e6, "millon": 1e6,
    "milhão": 1e6, "milhões": 1e6, "milhao": 1e6, "milhoes": 1e6, "mn": 1e6, "m": 1e6,
    "thousand": 1e3, "k": 1e3, "juta": 1e6, "jt": 1e6, "ribu": 1e3, "rb": 1e3, "miliar": 1e9,
    "libo": 1e3, "milyon": 1e6, "lakh": 1e5, "lakhs": 1e5,
    "man": 1e4, "manyen": 1e4,  # 万 read aloud: workers in Japan count yen this way in every language
    "သိန်း": 1e5, "သန်း": 1e6, "ထောင်": 1e3, "သောင်း": 1e4,
}
FILLER_WORDS = frozenset("""
about around approximately approx total in paid i we more than over roughly just only
khoảng khoang tầm tam chừng trả tra hơn hon và va tổng tong cộng cong hết het
約 およそ 大约 大概 左右 一共 总共 共 全部 以上 多 ぐらい くらい 程度 ほど 合計 支払った 払った
cerca de aproximadamente unos unas más mas pagué pague paguei total mais ou menos e y
mga humigit kumulang nagbayad ako ang sa na ng
sekitar kira kurang lebih bayar saya dan
ခန့် လောက် ကျော်
""".split())
# Counting words that belong to one country's way of writing money: with no unit written, they tell the currency.
MULTIPLIER_CURRENCY: dict[str, str] = {
    "triệu": "VND", "trieu": "VND", "tr": "VND", "nghìn": "VND", "nghin": "VND", "ngàn": "VND", "ngan": "VND",
    "tỷ": "VND", "juta": "IDR", "jt": "IDR", "ribu": "IDR", "rb": "IDR", "miliar": "IDR",
    "သိန်း": "MMK", "သန်း": "MMK", "ထောင်": "MMK", "သောင်း": "MMK", "lakh": "MMK", "lakhs": "MMK",
    "libo": "PHP", "milyon": "PHP", "man": "JPY", "manyen": "JPY",
}
_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5,
                 "六": 6, "七": 7, "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
_KANJI_BIG = {"万": 10_000, "萬": 10_000, "億": 100_000_000, "亿": 100_000_000}


@dataclass(frozen=True)
class Amount:
    value: float
    currency: str
    currency_assumed: bool  # no unit was written; the worker's usual currency was taken
    jpy: int
    rate_date: str

    def display(self) -> str:
        value = int(self.value) if float(self.value).is_integer() else round(self.value, 2)
        return f"{value:,} {self.currency}"


def _kanji_to_number(text: str) -> str:
    """Turns runs of kanji numerals (五十万, 三千) into digits; leaves everything else alone."""
    def convert(run: str) -> str:
        total, section, digit = 0, 0, 0
        for ch in run:
            if ch in _KANJI_DIGITS:
                digit = _KANJI_DIGITS[ch]
            elif ch in _KANJI_UNITS:
                section += (digit or 1) * _KANJI_UNITS[ch]
                digit = 0
            elif ch in _KANJI_BIG:
                total += (section + digit or 1) * _KANJI_BIG[ch]
                section, digit = 0, 0
        return str(total + section + digit)

    pattern = r"(?<!\d)[" + "".join(_KANJI_DIGITS) + "十百千][" + "".join(_KANJI_DIGITS) + "十百千万萬億亿]*"
    return re.sub(pattern, lambda m: convert(m.group(0)), text)


def _to_float(num: str) -> float | None:
    """'80,000,000' 80e6; '3.000' 3000 (dot as thousands); '2,5' 2.5; '1.5' 1.5; "1'000" 1000."""
    num = num.replace(" ", "").replace("'", "").replace("\u00a0", "")
    if not num:
        return None
    seps = [c for c in num if c in ",."]
    if not seps:
        return float(num)
    last = max(num.rfind(","), num.rfind("."))
    tail = num[last + 1:]
    if len(set(seps)) == 2:  # both used: the last one is the decimal mark
        whole = re.sub(r"[,.]", "", num[:last])
        return float(f"{whole}.{tail}")
    groups = re.split(r"[,.]", num)
    if len(groups) > 2 or (len(tail) == 3 and all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3):
        if not all(len(g) == 3 for g in groups[1:]):
            return None
        return float("".join(groups))
    return float(f"{groups[0]}.{groups[1]}")


class AmountParser:
    def __init__(self, table: CurrencyTable) -> None:
        self.table = table
        marks: list[tuple[str, str]] = []
        for cur in table.currencies:
            for s in cur.symbols + cur.words:
                marks.append((s.casefold(), cur.code))
        # Longest first, so 日元 wins over 元 and R$ over $.
        self.currency_marks = sorted(marks, key=lambda m: -len(m[0]))
        self.multipliers = sorted(MULTIPLIERS.items(), key=lambda m: -len(m[0]))

    def _find_currency(self, text: str) -> tuple[str | None, str]:
        for mark, code in self.currency_marks:
            if mark.isascii() and re.search(r"[a-z]", mark):
                m = re.search(r"(?<![a-z])" + re.escape(mark) + r"(?![a-z])", text)
            else:
                idx = text.find(mark)
                m = None if idx < 0 else re.search(re.escape(mark), text)
            if m:
                return code, text[: m.start()] + " " + text[m.end():]
        return None, text

    def parse(self, raw: str, language: str) -> Amount | None:
        text = _kanji_to_number(ascii_digits(clean(raw)).casefold())
        # Burmese often says the counting word first ("သိန်း 50" = 50 lakh): put it after the number.
        text = re.sub(r"(သိန်း|သန်း|သောင်း|ထောင်)\s*(\d[\d,.]*)", r"\2 \1", text)
        if not re.search(r"\d", text):
            return None
        currency, rest = self._find_currency(text)
        # A currency word may itself carry a multiplier-looking letter (e.g. "m" inside "mmk"), so numbers are read
        # from what is left after the currency mark is taken out.
        number = r"\d+(?:[ ,.'\u00a0]\d{3})*(?:[.,]\d+)?|\d+"
        tokens = re.findall(rf"({number})\s*({'|'.join(re.escape(w) for w, _ in self.multipliers)})?(?![a-z\u00c0-\u024f])", rest)
        leftovers = re.sub(rf"({number})\s*({'|'.join(re.escape(w) for w, _ in self.multipliers)})?(?![a-z\u00c0-\u024f])", " ", rest)
        if not tokens:
            return None
        # Words that often stand around an amount; anything else left over means we are guessing.
        if any(w not in FILLER_WORDS for w in re.findall(r"[^\W\d_]+", leftovers)):
            return None
        total = 0.0
        for num, mult in tokens:
            value = _to_float(num)
            if value is None:
                return None
            total += value * (MULTIPLIERS.get(mult, 1.0) if mult else 1.0)
        if total < 0 or total > 1e13:
            return None
        assumed = currency is None
        if currency is None:
            currency = next((MULTIPLIER_CURRENCY[m] for _, m in tokens if m in MULTIPLIER_CURRENCY), None)
        code = currency or self.table.default_by_language.get(language, "JPY")
        cur = self.table.by_code(code)
        return Amount(value=total, currency=code, currency_assumed=assumed,
                      jpy=int(round(total * cur.jpy_per_unit)), rate_date=self.table.as_of)
