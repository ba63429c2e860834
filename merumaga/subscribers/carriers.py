"""Japanese mobile carriers' mail domains: their readers filter mail by sending domain
(ドメイン指定受信), their servers answer in their own ways, and many read ISO-2022-JP."""

CARRIER_DOMAINS = (
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "softbank.ne.jp",
    "i.softbank.jp",
    "disney.ne.jp",
    "ymobile.ne.jp",
    "emobile.ne.jp",
    "pdx.ne.jp",
    "willcom.com",
    "rakumail.jp",
)


def is_carrier(address: str) -> bool:
    """Whether an address (or a bare domain) is at a carrier, subdomains included."""
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith(f".{d}") for d in CARRIER_DOMAINS)
