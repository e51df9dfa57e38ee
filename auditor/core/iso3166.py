"""The 249 officially assigned ISO 3166-1 alpha-2 country codes, the only codes the policy data uses,
and what people write for them: alpha-3 codes and country names."""

from __future__ import annotations

# Officially assigned codes only: no exceptional reservations (EU, UK, EL, EA, IC), no user-assigned
# codes (XK for Kosovo, ZZ for unknown) and no transitional ones (AN, CS). GeoIP and RIR data can
# return such codes; the caller decides what they mean. One row per initial letter, for review.
_ROWS = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ",
    "BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ",
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ",
    "DE DJ DK DM DO DZ",
    "EC EE EG EH ER ES ET",
    "FI FJ FK FM FO FR",
    "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY",
    "HK HM HN HR HT HU",
    "ID IE IL IM IN IO IQ IR IS IT",
    "JE JM JO JP",
    "KE KG KH KI KM KN KP KR KW KY KZ",
    "LA LB LC LI LK LR LS LT LU LV LY",
    "MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ",
    "NA NC NE NF NG NI NL NO NP NR NU NZ",
    "OM",
    "PA PE PF PG PH PK PL PM PN PR PS PT PW PY",
    "QA",
    "RE RO RS RU RW",
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ",
    "TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ",
    "UA UG UM US UY UZ",
    "VA VC VE VG VI VN VU",
    "WF WS",
    "YE YT",
    "ZA ZM ZW",
)

COUNTRY_CODES: frozenset[str] = frozenset(code for row in _ROWS for code in row.split())


# ISO 3166-1 alpha-3 -> alpha-2 for the countries SaaS data most often goes to; others are
# reported as not mapped rather than guessed.
ALPHA3 = {
    "USA": "US", "GBR": "GB", "DEU": "DE", "FRA": "FR", "IRL": "IE", "NLD": "NL", "CAN": "CA",
    "AUS": "AU", "CHE": "CH", "IND": "IN", "JPN": "JP", "SWE": "SE", "ESP": "ES", "ITA": "IT",
    "BEL": "BE", "AUT": "AT", "DNK": "DK", "FIN": "FI", "POL": "PL", "SGP": "SG", "BRA": "BR",
    "ISR": "IL", "NZL": "NZ", "EST": "EE", "LUX": "LU", "PRT": "PT", "NOR": "NO", "KOR": "KR",
    "MLT": "MT", "CZE": "CZ", "CHN": "CN", "ZAF": "ZA", "ARG": "AR", "URY": "UY",
}  # fmt: skip

COUNTRY_NAMES = {
    "united states": "US", "united states of america": "US", "u.s.a.": "US", "u.s.": "US",
    "united kingdom": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "germany": "DE", "deutschland": "DE", "france": "FR", "ireland": "IE",
    "netherlands": "NL", "the netherlands": "NL", "canada": "CA", "australia": "AU",
    "switzerland": "CH", "india": "IN", "japan": "JP", "sweden": "SE", "spain": "ES",
    "italy": "IT", "belgium": "BE", "austria": "AT", "denmark": "DK", "finland": "FI",
    "poland": "PL", "singapore": "SG", "brazil": "BR", "israel": "IL", "new zealand": "NZ",
    "estonia": "EE", "luxembourg": "LU", "portugal": "PT", "norway": "NO",
    "south korea": "KR", "republic of korea": "KR", "malta": "MT", "czech republic": "CZ",
    "czechia": "CZ", "china": "CN", "south africa": "ZA", "argentina": "AR", "uruguay": "UY",
    "russia": "RU", "turkey": "TR", "mexico": "MX", "hong kong": "HK", "taiwan": "TW",
    "philippines": "PH", "indonesia": "ID", "united arab emirates": "AE", "ukraine": "UA",
    "vietnam": "VN",
}  # fmt: skip
"""English (and a few native) names of one country each, in lower case: what the last line of a
legal address or a country column holds, and what people write for a code."""


def country_code(value: str) -> str | None:
    """An ISO 3166-1 alpha-2 code for an alpha-2 or alpha-3 code or a common country name."""
    text = " ".join(value.strip().split())
    upper = text.upper()
    if upper in COUNTRY_CODES:
        return upper
    return ALPHA3.get(upper) or COUNTRY_NAMES.get(text.lower())
