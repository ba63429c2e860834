import os
import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from merumaga.relays import (
    DEFAULT_CONNECTIONS,
    Relay,
    build_relays,
    configured_relays,
    domain_limit,
    parse_domain_limits,
    parse_relay,
)


def test_one_relay_with_every_option():
    [relay] = build_relays(
        "smtp+starttls://mailer:p%40ss%2Cword@relay1.example.jp:2587"
        "?weight=3&connections=4&per_second=200&per_minute=10000",
        "",
        1025,
    )
    assert relay == Relay(
        name="relay1.example.jp:2587",
        host="relay1.example.jp",
        port=2587,
        security="starttls",
        username="mailer",
        password="p@ss,word",  # percent-decoded: a password may hold "@" and ","
        weight=3,
        connections=4,
        per_second=200.0,
        per_minute=10000,
    )
    assert "p@ss" not in repr(relay)


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("smtp://relay.example.jp", "none", 25),
        ("smtp+starttls://relay.example.jp", "starttls", 587),
        ("smtps://relay.example.jp/", "tls", 465),
    ],
)
def test_scheme_gives_security_and_default_port(url, security, port):
    relay = parse_relay(url, "SMTP_RELAYS")
    assert (relay.security, relay.port, relay.username, relay.password) == (security, port, "", "")
    assert (relay.weight, relay.connections) == (1, DEFAULT_CONNECTIONS)
    assert relay.per_second is relay.per_minute is None


def test_several_relays_separated_by_commas_and_spaces():
    relays = build_relays(
        " smtps://a.example.jp?weight=3,smtp://b.example.jp:2525?weight=1&name=backup\n"
        "  smtp+starttls://u:p@c.example.jp?per_minute=60 ",
        "smtp://ignored.example.jp",
        1025,
    )
    assert [(r.name, r.host, r.weight) for r in relays] == [
        ("a.example.jp:465", "a.example.jp", 3),
        ("backup", "b.example.jp", 1),
        ("c.example.jp:587", "c.example.jp", 1),
    ]
    assert relays[2].per_minute == 60


def test_smtp_url_then_the_catcher_when_no_relays_are_set():
    [relay] = build_relays("", "smtps://u:p@relay.example.jp", 1025)
    assert (relay.host, relay.port, relay.security, relay.username) == (
        "relay.example.jp",
        465,
        "tls",
        "u",
    )
    [catcher] = build_relays("  ", "", 2626)
    assert (catcher.host, catcher.port, catcher.security) == ("127.0.0.1", 2626, "none")
    assert catcher.connections == 8


def test_configured_relays_reads_settings(settings):
    settings.SMTP_RELAYS = "smtp://a.example.jp?weight=2 smtp://b.example.jp"
    assert [r.host for r in configured_relays("bulk")] == ["a.example.jp", "b.example.jp"]
    settings.SMTP_RELAYS = ""
    settings.SMTP_URL = ""
    settings.MAILCATCHER_PORT = 3030
    for lane in ("bulk", "transactional"):
        assert [(r.host, r.port) for r in configured_relays(lane)] == [("127.0.0.1", 3030)]


def test_a_relay_of_its_own_for_mail_sent_one_at_a_time(settings):
    settings.SMTP_RELAYS = (
        "smtp://bulk.example.jp?lane=bulk smtp://now.example.jp?lane=transactional "
        "smtp://spare.example.jp"
    )
    assert [r.host for r in configured_relays("bulk")] == ["bulk.example.jp", "spare.example.jp"]
    assert [r.host for r in configured_relays("transactional")] == [
        "now.example.jp",
        "spare.example.jp",
    ]


@pytest.mark.parametrize(
    ("relays", "problem"),
    [
        ("smtp://a.example.jp?lane=bulk", "no relay carries the transactional lane"),
        ("smtp://a.example.jp?lane=transactional", "no relay carries the bulk lane"),
        ("smtp://a.example.jp?lane=fast", "lane='fast' must be one of bulk, transactional, both"),
    ],
)
def test_every_lane_needs_a_relay_and_a_known_name(relays, problem):
    with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
        build_relays(relays, "", 1025)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://relay.example.jp", "scheme must be one of smtp://"),
        ("relay.example.jp:25", "scheme"),
        ("smtp://:25", "no host name"),
        ("smtp://relay.example.jp:99999", "port must be a number"),
        ("smtp://relay.example.jp:port", "port must be a number"),
        ("smtp://relay.example.jp/submit", "no path"),
        ("smtp://relay.example.jp?weight=0", "weight='0' must be at least 1"),
        ("smtp://relay.example.jp?weight=two", "weight='two' must be a whole number"),
        ("smtp://relay.example.jp?connections=1.5", "connections='1.5' must be a whole number"),
        ("smtp://relay.example.jp?connections=5000", "connections='5000' must be at most"),
        ("smtp://relay.example.jp?per_second=-3", "per_second='-3' must be above 0"),
        ("smtp://relay.example.jp?per_second=nan", "per_second='nan' must be above 0"),
        ("smtp://relay.example.jp?per_minute=", "per_minute='' must be a whole number"),
        ("smtp://relay.example.jp?perSecond=5", "unknown option 'perSecond'"),
        ("smtp://relay.example.jp?weight=1&weight=2", "'weight' given twice"),
        ("smtp://relay.example.jp?weight", "name=value pairs"),
    ],
)
def test_bad_relay_urls_are_refused_naming_the_variable_and_the_part(url, problem):
    with pytest.raises(ImproperlyConfigured) as error:
        build_relays(f"smtp://ok.example.jp, {url}", "", 1025)
    message = str(error.value)
    assert message.startswith("SMTP_RELAYS (relay 2)=")
    assert problem in message


def test_errors_name_smtp_url_and_never_show_the_password():
    with pytest.raises(ImproperlyConfigured) as error:
        build_relays("", "smtp://mailer:hunter2@relay.example.jp?weight=0", 1025)
    message = str(error.value)
    assert message.startswith("SMTP_URL=")
    assert "mailer:***@relay.example.jp" in message
    assert "hunter2" not in message


def test_two_relays_with_one_name_are_refused():
    with pytest.raises(ImproperlyConfigured, match=r"SMTP_RELAYS: two relays .*\?name="):
        build_relays("smtp://u:a@r.example.jp smtp://v:b@r.example.jp", "", 1025)


def test_domain_limits_are_parsed_to_messages_per_second():
    assert parse_domain_limits("docomo.ne.jp=20/s, Gmail.COM=300/s\nexample.org=600/m") == {
        "docomo.ne.jp": 20.0,
        "gmail.com": 300.0,
        "example.org": 10.0,
    }
    assert parse_domain_limits("slow.example=36/h,half.example=0.5/s") == {
        "slow.example": 0.01,
        "half.example": 0.5,
    }
    assert parse_domain_limits("") == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("docomo.ne.jp", "should look like docomo.ne.jp=20/s"),
        ("docomo.ne.jp=fast", "should look like"),
        ("docomo.ne.jp=20/d", "should look like"),
        ("docomo.ne.jp=20", "should look like"),
        ("docomo.ne.jp=0/s", "must be above 0"),
        ("a.jp=1/s,A.jp=2/s", "'a.jp' is listed twice"),
    ],
)
def test_bad_domain_limits_are_refused_naming_the_variable(text, problem):
    with pytest.raises(ImproperlyConfigured) as error:
        parse_domain_limits(text)
    assert str(error.value).startswith("MERUMAGA_DOMAIN_LIMITS: ")
    assert problem in str(error.value)


def test_the_default_limits_cover_the_three_carriers(settings):
    for domain in ("docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp"):
        assert 0 < domain_limit(domain) <= 50, domain
    assert domain_limit("DoCoMo.ne.jp.") == domain_limit("docomo.ne.jp")
    assert domain_limit("example.jp") is None
    settings.DOMAIN_LIMITS = {"example.jp": 5.0}
    assert domain_limit("Example.JP") == 5.0
    assert domain_limit("docomo.ne.jp") is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SMTP_RELAYS", "smtp://relay.example.jp?connections=lots", "SMTP_RELAYS (relay 1)="),
        ("MERUMAGA_DOMAIN_LIMITS", "docomo.ne.jp=many", "MERUMAGA_DOMAIN_LIMITS: "),
    ],
)
def test_a_bad_value_stops_start_up(tmp_path, variable, value, message):
    env = {**os.environ, "MERUMAGA_DATA_DIR": str(tmp_path), variable: value}
    env["DJANGO_SETTINGS_MODULE"] = "merumaga.settings"
    process = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert f"ImproperlyConfigured: {message}" in process.stderr
