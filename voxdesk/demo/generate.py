"""Deterministic fictional customers and holdings of the demo bank, as CSV texts in the import format.

:func:`generate_customers` returns the two files that ``profiles.importer.import_customers`` takes, so the demo
data travels the same path as a bank's real export. Same ``n`` and ``seed`` give byte-identical output on every
machine (one seeded :class:`random.Random`, no set iteration, ages taken on the fixed date :data:`DEMO_AS_OF`).

What the data looks like:

* AUM (CNY yuan) is log-normal (median 35,000, σ 2.3 in log space) and sampled by strata, so every tier of
  ``profiles.tiers.TIER_THRESHOLDS_CNY`` appears at n = 200; older customers tend to hold more.
* Risk tolerance C1–C5 rises with AUM and falls with age; about 8 % were never assessed (empty).
* Holdings (0–5 per customer) are on-sale products the customer may buy: :func:`knowledge.catalog.risk_suitable`
  and :func:`knowledge.catalog.eligible` at :data:`DEMO_AS_OF`, each asset at least its minimum amount, and the
  sum of all holdings at most the customer's AUM. Credit cards and loans are liabilities outside AUM; they are
  listed with amount ``0.00`` (the relationship, not a balance).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from random import Random
from statistics import NormalDist

from knowledge.catalog import Product, eligible, risk_suitable
from profiles.importer import CUSTOMER_COLUMNS, HOLDING_COLUMNS
from profiles.tiers import RISK_LEVELS, Tier, tier_for_aum, tier_rank
from voxdesk.demo import Branch, load_branches, load_products

DEMO_AS_OF = date(2026, 11, 1)
"""The day the demo data describes: ages, eligibility and open holdings are as of this date."""

LIABILITY_CATEGORIES = ("credit_card", "loan")
GROUP_ORDER = ("payroll", "pension", "car_owner", "county", "merchant", "new_citizen", "student")

_AUM_MEDIAN_CNY = 35_000.0
_AUM_SIGMA = 2.3
_AUM_MAX_CNY = 80_000_000.0
_CENT = Decimal("0.01")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _surnames(text: str) -> tuple[tuple[str, str, int], ...]:
    """Parse ``surname:pinyin:relative frequency`` items."""
    rows = (item.split(":") for item in text.split())
    return tuple((zh, pinyin, int(weight)) for zh, pinyin, weight in rows)


_SURNAMES = _surnames(
    "王:wang:74 李:li:72 张:zhang:70 刘:liu:55 陈:chen:46 杨:yang:32 黄:huang:24 赵:zhao:23 吴:wu:21 "
    "周:zhou:21 徐:xu:17 孙:sun:16 马:ma:15 朱:zhu:14 胡:hu:13 郭:guo:12 何:he:12 高:gao:11 林:lin:11 "
    "罗:luo:10 郑:zheng:10 梁:liang:9 谢:xie:8 宋:song:7 唐:tang:7 许:xu:7 韩:han:7 冯:feng:6 邓:deng:6 "
    "曹:cao:6 彭:peng:6 曾:zeng:5 肖:xiao:5 田:tian:5 董:dong:5 袁:yuan:5 潘:pan:4 于:yu:4 蒋:jiang:4 蔡:cai:4 "
    "余:yu:4 杜:du:4 叶:ye:4 程:cheng:4 苏:su:4 魏:wei:4 吕:lyu:4 丁:ding:3 任:ren:3 沈:shen:3 姚:yao:3 卢:lu:3 "
    "钟:zhong:3 陆:lu:3 汪:wang:3 方:fang:3 石:shi:3 金:jin:2 欧阳:ouyang:1 上官:shangguan:1"
)
_GIVEN_F = _words(
    "芳 娜 敏 静 丽 艳 婷 雪 慧 颖 琳 欣 怡 佳 悦 晓 梦 雨 诗 涵 玉 兰 秀 英 萍 红 霞 洁 倩 璐 思 嘉 彤 瑶 月"
)
_GIVEN_M = _words(
    "伟 强 磊 军 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 宇 浩 凯 俊 帅 健 峰 建 国 文 博 志 晨 子 轩 睿 然"
)
_EN_FIRST_F = _words("Emma Olivia Sophie Grace Hannah Chloe Lucy Emily Charlotte Amelia Isabel Laura Sarah Anna Rachel")
_EN_FIRST_M = _words(
    "James Oliver Thomas William Daniel Henry Lucas Samuel David Michael Benjamin Adam Peter Mark Jack"
)
_EN_LAST = _words(
    "Smith Johnson Brown Taylor Miller Wilson Anderson Clark Lewis Walker Hall Young King Wright Scott Green "
    "Baker Adams Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart"
)
_MOBILE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 147 150 151 152 153 155 156 157 158 159 166 "
    "173 175 176 177 178 180 181 182 183 185 186 187 188 189 191 198 199"
)
_CATEGORY_WEIGHT = {
    "deposit": 3.0,
    "wealth": 2.5,
    "fund": 1.6,
    "insurance": 0.9,
    "precious_metal": 0.6,
    "credit_card": 1.4,
    "loan": 0.7,
}
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


@dataclass
class _Draft:
    """A customer being generated (AUM in CNY yuan)."""

    customer_id: str
    name: str
    language: str
    gender: str
    birth: date
    age: int
    branch: Branch
    phones: list[str] = field(default_factory=list)
    aum: Decimal = Decimal("0")
    tier: Tier = "mass"
    risk: str | None = None
    groups: list[str] = field(default_factory=list)
    holdings: list[tuple[Product, Decimal, date, date | None]] = field(default_factory=list)
    grade: str = "C"
    vip: bool = False
    consents: tuple[bool, bool, bool] = (False, False, False)
    email: str = ""


def generate_customers(n: int = 200, seed: int = 20261122, *, as_of: date = DEMO_AS_OF) -> tuple[str, str]:
    """Return ``(customers_csv, holdings_csv)`` for ``n`` fictional customers, deterministic in ``seed``.

    Columns are exactly ``profiles.importer.CUSTOMER_COLUMNS`` and ``HOLDING_COLUMNS``; amounts CNY yuan with
    two decimals, dates ``YYYY-MM-DD``, lists ``;``-separated. Customer ids are ``C000001`` …; phone numbers are
    Chinese mobiles in mixed spellings, unique across customers. Pure CPU, reads the bundled JSON once.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    rng = Random(seed)  # noqa: S311 - reproducible fictional data, not secrets
    products = [p for p in load_products() if p.on_sale]
    branches = load_branches()
    used_phones: set[str] = set()
    drafts = [_person(i, rng, branches, as_of, used_phones) for i in range(n)]
    _assign_aum(drafts, rng)
    for d in drafts:
        d.tier = tier_for_aum(d.aum)
        d.risk = _risk(d, rng)
        d.groups = _groups(d, rng)
        d.holdings = _holdings(d, rng, products, as_of)
        d.consents = (rng.random() < 0.70, rng.random() < 0.95, rng.random() < 0.30)
    _assign_grades_and_vip(drafts, rng)
    return _write(drafts)


# --- people ------------------------------------------------------------------------------------------------


def _person(i: int, rng: Random, branches: list[Branch], as_of: date, used: set[str]) -> _Draft:
    gender = rng.choice(("F", "M"))
    english = rng.random() < 0.15
    if english:
        first = rng.choice(_EN_FIRST_F if gender == "F" else _EN_FIRST_M)
        last = rng.choice(_EN_LAST)
        name = f"{first} {last}"
        email = f"{first}.{last}{rng.choice(('', str(rng.randint(1, 99))))}@{rng.choice(_EMAIL_DOMAINS)}".lower()
        email = email if rng.random() < 0.85 else ""
    else:
        surname, pinyin, _ = rng.choices(_SURNAMES, weights=[w for _, _, w in _SURNAMES])[0]
        chars = _GIVEN_F if gender == "F" else _GIVEN_M
        name = surname + "".join(rng.choice(chars) for _ in range(rng.choice((1, 2, 2, 2))))
        email = f"{pinyin}{rng.randint(10, 9999)}@{rng.choice(_EMAIL_DOMAINS)}" if rng.random() < 0.12 else ""
    year = min(2005, int(rng.triangular(1945, 2006, 1978)))
    birth = date(year, 1, 1) + timedelta(days=rng.randrange(365))
    county_branches = [b for b in branches if b.county]
    city_branches = [b for b in branches if not b.county]
    pool = county_branches if county_branches and (rng.random() < 0.25 or not city_branches) else city_branches
    return _Draft(
        customer_id=f"C{i + 1:06d}",
        name=name,
        language="en" if english else "zh",
        gender=gender,
        birth=birth,
        age=_age(birth, as_of),
        branch=rng.choice(pool),
        phones=[_phone(rng, used) for _ in range(1 if rng.random() < 0.7 else 2)],
        email=email,
    )


def _phone(rng: Random, used: set[str]) -> str:
    """A fresh Chinese mobile number (unique in ``used``) in one of several common spellings."""
    while True:
        digits = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
        if digits not in used:
            used.add(digits)
            break
    a, b, c = digits[:3], digits[3:7], digits[7:]
    spellings = (f"{a} {b} {c}", f"+86{digits}", digits, f"+86 {a}-{b}-{c}", f"0086 {a} {b} {c}", f"{a}-{b}-{c}")
    return rng.choices(spellings, weights=(3, 3, 3, 1, 1, 1))[0]


def _assign_aum(drafts: list[_Draft], rng: Random) -> None:
    """Stratified log-normal AUM; larger amounts go preferably to customers around 55."""
    n = len(drafts)
    if n == 0:
        return
    normal = NormalDist()
    mu = math.log(_AUM_MEDIAN_CNY)
    amounts = sorted(
        min(_AUM_MAX_CNY, math.exp(mu + _AUM_SIGMA * normal.inv_cdf(min(max((k + rng.random()) / n, 1e-9), 1 - 1e-9))))
        for k in range(n)
    )
    order = sorted(drafts, key=lambda d: -abs(d.age - 55) / 10 + rng.gauss(0, 1.5))
    for d, amount in zip(order, amounts, strict=True):
        d.aum = Decimal(f"{amount:.2f}")


def _risk(d: _Draft, rng: Random) -> str | None:
    """C1–C5 rising with AUM and falling with age; ~8 % never assessed."""
    if rng.random() < 0.08:
        return None
    score = 2.6 + (45 - d.age) / 20 + 0.35 * math.log10((float(d.aum) + 1000) / 50_000) + rng.gauss(0, 0.9)
    return RISK_LEVELS[min(4, max(0, round(score) - 1))]


def _groups(d: _Draft, rng: Random) -> list[str]:
    """Customer groups, in :data:`GROUP_ORDER`."""
    retired = d.age >= (55 if d.gender == "F" else 60)
    rich = tier_rank(d.tier) >= 2
    chosen = {
        "student": d.age <= 25 and rng.random() < 0.6,
        "pension": retired and rng.random() < 0.7,
        "car_owner": 25 <= d.age <= 70 and rng.random() < (0.45 if rich else 0.28),
        "county": d.branch.county,
        "merchant": 25 <= d.age <= 65 and rng.random() < 0.1,
        "new_citizen": 20 <= d.age <= 45 and not d.branch.county and rng.random() < 0.15,
    }
    chosen["payroll"] = 22 <= d.age < 60 and not chosen["student"] and rng.random() < 0.45
    return [g for g in GROUP_ORDER if chosen[g]]


# --- holdings ----------------------------------------------------------------------------------------------


def _holdings(
    d: _Draft, rng: Random, products: list[Product], as_of: date
) -> list[tuple[Product, Decimal, date, date | None]]:
    """0–5 products the customer may buy; assets split a share of AUM, each at least its minimum."""
    r = tier_rank(d.tier)
    k = rng.choices(range(6), weights=(max(2, 20 - 6 * r), 30 - 3 * r, 25, 13 + 3 * r, 8 + 4 * r, 4 + 4 * r))[0]
    candidates = [
        p
        for p in products
        if risk_suitable(d.risk, p.risk_grade)
        and eligible(p, tier=d.tier, age=d.age, groups=d.groups)
        and (p.category in LIABILITY_CATEGORIES or (p.min_amount_cny or _CENT) <= d.aum)
    ]
    picked: list[Product] = []
    while candidates and len(picked) < k:
        p = rng.choices(candidates, weights=[_CATEGORY_WEIGHT[c.category] for c in candidates])[0]
        picked.append(p)
        candidates.remove(p)
    assets = sorted((p for p in picked if p.category not in LIABILITY_CATEGORIES), key=_minimum, reverse=True)
    weights = [rng.expovariate(1.0) for _ in assets]
    remaining = (d.aum * Decimal(str(round(rng.uniform(0.55, 1.0), 4)))).quantize(_CENT, ROUND_DOWN)
    out: list[tuple[Product, Decimal, date, date | None]] = []
    for i, p in enumerate(assets):
        target = remaining * Decimal(str(weights[i] / sum(weights[i:])))
        amount = _amount(p, target, remaining, rng)
        if amount is None:
            continue
        remaining -= amount
        out.append((p, amount, *_dates(p, d, rng, as_of)))
    for p in picked:
        if p.category in LIABILITY_CATEGORIES:
            out.append((p, Decimal("0.00"), *_dates(p, d, rng, as_of)))
    return out


def _minimum(p: Product) -> Decimal:
    return p.min_amount_cny or _CENT


def _amount(p: Product, target: Decimal, remaining: Decimal, rng: Random) -> Decimal | None:
    """An amount near ``target`` (CNY), ≥ the product minimum and ≤ ``remaining``; ``None`` when none fits."""
    minimum = _minimum(p)
    if remaining < minimum:
        return None
    if p.category == "precious_metal" and p.risk_grade is None:  # physical bars: whole pieces only
        return minimum * max(1, min(int(target / minimum), int(remaining / minimum)))
    if p.category == "insurance":
        amount = minimum * rng.choice((1, 1, 2, 3, 5, 10))
    else:
        amount = max(minimum, target)
        if amount >= 10_000:  # larger sums in whole hundreds of yuan
            amount = (amount / 100).to_integral_value(ROUND_DOWN) * 100
    return max(minimum, min(amount, remaining).quantize(_CENT, ROUND_DOWN))


def _dates(p: Product, d: _Draft, rng: Random, as_of: date) -> tuple[date, date | None]:
    """Opened after the customer came of age (and reached the product's minimum age); still open on ``as_of``."""
    earliest = max(as_of - timedelta(days=8 * 365), _add_years(d.birth, max(18, p.min_age or 0)))
    if p.term_days is not None:
        earliest = max(earliest, as_of - timedelta(days=p.term_days - 1))
    earliest = min(earliest, as_of)
    opened = earliest + timedelta(days=rng.randint(0, (as_of - earliest).days))
    return opened, (opened + timedelta(days=p.term_days) if p.term_days is not None else None)


# --- grades and output -------------------------------------------------------------------------------------


def _assign_grades_and_vip(drafts: list[_Draft], rng: Random) -> None:
    """Grade by value contribution rank (A top 15 %, B 30 %, C 35 %, D 20 %); VIPs are mostly diamond/private."""
    scored = []
    for d in drafts:
        value = math.log10(float(d.aum) + 100) + 0.35 * len(d.holdings) + rng.gauss(0, 0.4)
        value += 0.5 * any(p.category == "loan" for p, *_ in d.holdings) + 0.3 * ("payroll" in d.groups)
        scored.append((value, d.customer_id, d))
    scored.sort(key=lambda t: (-t[0], t[1]))
    n = len(scored)
    for rank, (_, _, d) in enumerate(scored):
        share = rank / n
        d.grade = "A" if share < 0.15 else "B" if share < 0.45 else "C" if share < 0.80 else "D"
        if d.tier in ("diamond", "private"):
            d.vip = rng.random() < 0.85
        elif d.tier == "platinum" and d.grade == "A":
            d.vip = rng.random() < 0.3
        else:
            d.vip = rng.random() < 0.005


def _write(drafts: list[_Draft]) -> tuple[str, str]:
    cbuf, hbuf = io.StringIO(), io.StringIO()
    cw = csv.DictWriter(cbuf, fieldnames=CUSTOMER_COLUMNS, lineterminator="\n")
    hw = csv.DictWriter(hbuf, fieldnames=HOLDING_COLUMNS, lineterminator="\n")
    cw.writeheader()
    hw.writeheader()
    for d in drafts:
        cw.writerow(
            {
                "customer_id": d.customer_id,
                "name": d.name,
                "phones": ";".join(d.phones),
                "language": d.language,
                "gender": d.gender,
                "birth_date": d.birth.isoformat(),
                "branch_id": d.branch.branch_id,
                "aum_cny": f"{d.aum:.2f}",
                "risk_tolerance": d.risk or "",
                "tier": d.tier,
                "grade": d.grade,
                "groups": ";".join(d.groups),
                "vip": _flag(d.vip),
                "consent_marketing_calls": _flag(d.consents[0]),
                "consent_recording": _flag(d.consents[1]),
                "consent_biometrics": _flag(d.consents[2]),
                "email": d.email,
            }
        )
        for p, amount, opened, maturity in d.holdings:
            hw.writerow(
                {
                    "customer_id": d.customer_id,
                    "product_id": p.product_id,
                    "amount_cny": f"{amount:.2f}",
                    "opened_on": opened.isoformat(),
                    "maturity_on": maturity.isoformat() if maturity else "",
                }
            )
    return cbuf.getvalue(), hbuf.getvalue()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _age(birth: date, day: date) -> int:
    """Whole years from ``birth`` to ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
