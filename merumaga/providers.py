"""The big mailbox providers, by the domains of their addresses: reports and metrics group
receiving domains by them (Gmail, Yahoo, the Japanese carriers, …). Shared: no app is
imported here."""

PROVIDERS = {
    "Gmail": ("gmail.com", "googlemail.com"),
    "Yahoo": ("yahoo.co.jp", "yahoo.ne.jp", "ymail.ne.jp", "yahoo.com"),
    "Outlook": (
        "outlook.com",
        "outlook.jp",
        "hotmail.com",
        "hotmail.co.jp",
        "live.jp",
        "live.com",
        "msn.com",
    ),
    "docomo": ("docomo.ne.jp",),
    "au": ("ezweb.ne.jp", "au.com", "auone.jp"),
    "SoftBank": ("softbank.ne.jp", "i.softbank.jp", "disney.ne.jp"),
}
OTHERS = "others"
_PROVIDER_OF = {domain: name for name, domains in PROVIDERS.items() for domain in domains}


def provider(domain: str) -> str:
    return _PROVIDER_OF.get(domain.lower().rstrip("."), OTHERS)
