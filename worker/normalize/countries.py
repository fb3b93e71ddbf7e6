"""Country names, codes and aliases → ISO 3166 alpha-2, and the sales region of each code (pure)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

from connectors.values import clean_text, is_missing

__all__ = ["REGIONS", "REGION_BY_CODE", "normalize_country", "region_for"]

# --------------------------------------------------------------------------------------------- countries

_DROP_CHARS = re.compile(r"[.'’`´]")
_NON_WORD = re.compile(r"[\W_]+")


def _fold(text: str) -> str:
    """Fold a country name for matching: no accents, case, dots, apostrophes or punctuation."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _NON_WORD.sub(" ", _DROP_CHARS.sub("", text)).strip()
    if text.startswith("the "):
        text = text[4:]
    if text.startswith("st "):
        text = "saint " + text[3:]
    return text


#: Common names, abbreviations and local names that pycountry's names and codes do not cover
#: (matched after ``_fold``, so "U.S.A." and "usa" are one entry). Explicit: no fuzzy matching.
_COUNTRY_ALIASES: dict[str, str] = {
    # United States
    "usa": "US",
    "us": "US",
    "us of a": "US",
    "united states": "US",
    "united states of america": "US",
    "america": "US",
    "estados unidos": "US",
    "vereinigte staaten": "US",
    "etats unis": "US",
    # United Kingdom
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    # Europe
    "deutschland": "DE",
    "germany": "DE",
    "federal republic of germany": "DE",
    "holland": "NL",
    "nederland": "NL",
    "netherlands": "NL",
    "czechia": "CZ",
    "czech republic": "CZ",
    "russia": "RU",
    "turkey": "TR",
    "turkiye": "TR",
    "macedonia": "MK",
    "republic of macedonia": "MK",
    "moldova": "MD",
    "vatican": "VA",
    "vatican city": "VA",
    "holy see": "VA",
    "espana": "ES",
    "italia": "IT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "osterreich": "AT",
    "belgie": "BE",
    "belgique": "BE",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "eire": "IE",
    "hellas": "GR",
    "republic of ireland": "IE",
    # Middle East, Africa
    "uae": "AE",
    "emirates": "AE",
    "palestine": "PS",
    "state of palestine": "PS",
    "iran": "IR",
    "syria": "SY",
    "ivory coast": "CI",
    "cote divoire": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "dr congo": "CD",
    "drc": "CD",
    "democratic republic of congo": "CD",
    "democratic republic of the congo": "CD",
    "congo kinshasa": "CD",
    "republic of congo": "CG",
    "republic of the congo": "CG",
    "congo brazzaville": "CG",
    "tanzania": "TZ",
    "ksa": "SA",
    # Asia-Pacific
    "south korea": "KR",
    "korea": "KR",
    "korea south": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "korea north": "KP",
    "dprk": "KP",
    "burma": "MM",
    "brunei": "BN",
    "laos": "LA",
    "vietnam": "VN",
    "viet nam": "VN",
    "taiwan": "TW",
    "macau": "MO",
    "east timor": "TL",
    "micronesia": "FM",
    "prc": "CN",
    "peoples republic of china": "CN",
    "mainland china": "CN",
    "hong kong sar": "HK",
    # Americas
    "bolivia": "BO",
    "venezuela": "VE",
    "brasil": "BR",
    "mexico": "MX",
    "us virgin islands": "VI",
    "british virgin islands": "VG",
    "falklands": "FK",
    "falkland islands": "FK",
    "curacao": "CW",
}


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    """Folded name or code → alpha-2, built once from pycountry plus ``_COUNTRY_ALIASES``."""
    exact: dict[str, str] = {}
    derived: dict[str, set[str]] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        names = [getattr(country, attr, None) for attr in ("name", "official_name", "common_name")]
        for key in (country.alpha_2, country.alpha_3, *names):
            if key:
                exact.setdefault(_fold(key), code)
        for name in names:
            # "Korea, Republic of" → also "Republic of Korea" and "Korea"; ambiguous short forms are dropped
            if name and ", " in name:
                head, _, tail = name.partition(", ")
                for key in (f"{tail} {head}", head):
                    derived.setdefault(_fold(key), set()).add(code)
            if name and " (" in name:
                derived.setdefault(_fold(name.split(" (", 1)[0]), set()).add(code)
    index = {key: next(iter(codes)) for key, codes in derived.items() if len(codes) == 1}
    index.update(exact)
    index.update(_COUNTRY_ALIASES)
    return index


_PARENS = re.compile(r"\(([^()]*)\)")


@lru_cache(maxsize=8192)
def normalize_country(value: str) -> str | None:
    """ISO 3166-1 alpha-2 code for a country name, code or common alias; None when missing or unknown.

    Matches names, official and common names, alpha-2 and alpha-3 codes from pycountry, ignoring case,
    accents and punctuation ("U.S.A.", "Côte d'Ivoire", "cote divoire"), plus an explicit alias table
    ("UK", "England", "Holland", "Deutschland", "South Korea", "Russia"...). No fuzzy matching. When nothing
    matches, a parenthesised part is tried ("Germany (DE)"). ``"NA"`` is a missing token, not Namibia.
    """
    if not isinstance(value, str):
        return None
    s = clean_text(value)
    if s is None:
        return None
    index = _country_index()
    code = index.get(_fold(s))
    if code is None and "(" in s:
        for candidate in (_PARENS.sub(" ", s), *_PARENS.findall(s)):
            candidate = candidate.strip()
            if candidate and not is_missing(candidate):
                code = index.get(_fold(candidate))
                if code:
                    break
    return code


# --------------------------------------------------------------------------------------------- regions

# Sales regions by ISO 3166 alpha-2, following the UN M49 geographic regions:
#   North America = M49 "Northern America"; LATAM = "Latin America and the Caribbean";
#   EMEA = Europe, Africa, Western Asia, plus Iran (the Middle East); APAC = the rest of Asia and Oceania.
# Antarctica (AQ) belongs to no region. ``tests/unit/test_normalize.py`` checks full coverage of pycountry.
_REGION_CODES: dict[str, str] = {
    "North America": "US CA BM GL PM",
    "LATAM": (
        # Mexico, Central America
        "MX BZ CR SV GT HN NI PA "
        # South America (with South Georgia and Bouvet Island)
        "AR BO BR CL CO EC FK GF GY PY PE SR UY VE GS BV "
        # Caribbean
        "AI AG AW BS BB BQ VG KY CU CW DM DO GD GP HT JM MQ MS PR BL KN LC MF VC SX TT TC VI"
    ),
    "EMEA": (
        # Europe
        "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT LU "
        "LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK "
        # Middle East (M49 Western Asia, plus Iran)
        "AE AM AZ BH GE IL IQ IR JO KW LB OM PS QA SA SY TR YE "
        # Africa (with the French Southern Territories and the British Indian Ocean Territory)
        "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG MW "
        "ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH ZM ZW TF IO"
    ),
    "APAC": (
        # East, South-East, South and Central Asia
        "CN HK MO TW JP KR KP MN BN KH ID LA MY MM PH SG TH TL VN AF BD BT IN MV NP PK LK KZ KG TJ TM UZ "
        # Oceania
        "AU NZ NF HM CC CX FJ NC PG SB VU GU KI MH FM NR MP PW UM AS CK PF NU PN WS TK TO TV WF"
    ),
}
REGIONS: tuple[str, ...] = tuple(_REGION_CODES)
REGION_BY_CODE: dict[str, str] = {
    code: region for region, codes in _REGION_CODES.items() for code in codes.split()
}


def region_for(alpha2: str) -> str | None:
    """The sales region of an alpha-2 code: North America, LATAM, EMEA or APAC; None if unknown (or AQ)."""
    if not isinstance(alpha2, str):
        return None
    region = REGION_BY_CODE.get(alpha2)
    if region is None:
        region = REGION_BY_CODE.get(alpha2.strip().upper())
    return region
