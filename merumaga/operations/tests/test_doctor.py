"""`merumaga doctor` against recorded DNS answers (no network): what a well-set domain looks
like, and for each thing missing, a fail or warn with the exact record to add."""

import io
import json
from base64 import b64encode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command

from merumaga.institute.models import SiteSettings
from merumaga.operations import doctor
from merumaga.operations.models import DoctorRun

pytestmark = pytest.mark.django_db

RELAY_IP = "203.0.113.25"


class RecordedDns:
    """Answers by (name, type), as dns_lookup gives them; anything else does not exist."""

    def __init__(self, answers: dict[tuple[str, str], list[str]]) -> None:
        self.answers = answers

    def __call__(self, name: str, rdtype: str) -> list[str]:
        return self.answers.get((name.rstrip("."), rdtype), [])


@pytest.fixture
def real_domain(settings, tmp_path):
    """A setup as an institute would have it: relay, DKIM in the platform, its own details."""
    settings.DEFAULT_FROM_EMAIL = "news@institute.example.jp"
    settings.BOUNCE_DOMAIN = "mail.institute.example.jp"
    settings.SMTP_URL = "smtp+starttls://relay.institute.example.jp:587"
    settings.SMTP_RELAYS = ""
    settings.MX_HOST = "mx.institute.example.jp"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings.DKIM_DOMAIN, settings.DKIM_SELECTOR = "institute.example.jp", "mm2026"
    settings.DKIM_KEY_FILE = str(key_file)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    SiteSettings.objects.create(
        organisation_name="未来技術研究所",
        postal_address="〒100-0005 東京都千代田区丸の内1-1",
        contact_email="info@institute.example.jp",
        from_email="news@institute.example.jp",
    )
    return {
        ("relay.institute.example.jp", "A"): [RELAY_IP],
        ("mail.institute.example.jp", "TXT"): ["v=spf1 include:_spf.institute.example.jp -all"],
        ("_spf.institute.example.jp", "TXT"): [f"v=spf1 ip4:{RELAY_IP}/32 ~all"],
        ("mm2026._domainkey.institute.example.jp", "TXT"): [
            f"v=DKIM1; k=rsa; p={b64encode(public).decode()}"
        ],
        ("_dmarc.institute.example.jp", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:d@x.jp"],
        ("mail.institute.example.jp", "MX"): ["10 mx.institute.example.jp."],
        ("25.113.0.203.in-addr.arpa", "PTR"): ["relay.institute.example.jp."],
    }


def statuses(findings) -> dict[str, str]:
    return {finding.check: finding.status for finding in findings}


def test_a_well_set_domain_passes_the_dns_checks(real_domain):
    check = doctor.Doctor(lookup=RecordedDns(real_domain))
    found = statuses([*check.spf(), *check.dkim(), *check.dmarc(), *check.mx()])
    found |= statuses([*check.reverse_dns(), *check.sender_identity(), *check.bulk_sender_rules()])
    assert found == {name: "ok" for name in found}
    assert set(found) == {"spf", "dkim", "dmarc", "mx", "ptr", "sender", "bulk_rules"}


def test_each_missing_record_is_a_failure_with_the_record_to_add(real_domain):
    for name in [
        ("mail.institute.example.jp", "TXT"),
        ("mm2026._domainkey.institute.example.jp", "TXT"),
        ("_dmarc.institute.example.jp", "TXT"),
        ("mail.institute.example.jp", "MX"),
    ]:
        del real_domain[name]
    check = doctor.Doctor(lookup=RecordedDns(real_domain))
    spf, dkim, dmarc, mx = check.spf()[0], check.dkim()[0], check.dmarc()[0], check.mx()[0]
    assert {spf.status, dkim.status, dmarc.status, mx.status} == {"fail"}
    assert spf.fix == f'mail.institute.example.jp. TXT "v=spf1 ip4:{RELAY_IP} -all"'
    assert dkim.fix.startswith('mm2026._domainkey.institute.example.jp. TXT "v=DKIM1; k=rsa; p=MII')
    assert dmarc.fix.startswith('_dmarc.institute.example.jp. TXT "v=DMARC1; p=none;')
    assert mx.fix == "mail.institute.example.jp. MX 10 mx.institute.example.jp."


def test_wrong_records_are_named(real_domain):
    real_domain[("_spf.institute.example.jp", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 -all"]
    real_domain[("mm2026._domainkey.institute.example.jp", "TXT")] = ["v=DKIM1; p=AAAA"]
    real_domain[("_dmarc.institute.example.jp", "TXT")] = ["v=DMARC1; p=none"]
    real_domain[("25.113.0.203.in-addr.arpa", "PTR")] = ["host-25.isp.example.net."]
    check = doctor.Doctor(lookup=RecordedDns(real_domain))
    assert check.spf()[0].status == "fail" and RELAY_IP in check.spf()[0].message
    assert "一致しません" in check.dkim()[0].message
    assert check.dmarc()[0].status == "warn" and "p=none" in check.dmarc()[0].message
    assert check.reverse_dns()[0].status == "fail"


def test_the_demo_setup_is_told_what_a_real_domain_needs(client, settings):
    """The embedded default: mail goes to the catcher, http, the demo address."""
    out = io.StringIO()
    doctor_lookup = RecordedDns({})
    original, doctor.dns_lookup = doctor.dns_lookup, doctor_lookup
    try:
        with pytest.raises(SystemExit) as ended:
            call_command("doctor", stdout=out)
    finally:
        doctor.dns_lookup = original
    assert ended.value.code == 1
    text = out.getvalue()
    assert "fail  spf" in text and "fail  https" in text and "warn  relay_tls" in text
    assert "ok, " in text.splitlines()[-1]
    run = DoctorRun.objects.get()
    assert run.fail >= 3 and run.findings[0]["check"] == "spf"

    english = io.StringIO()
    doctor.dns_lookup = doctor_lookup
    try:
        with pytest.raises(SystemExit):
            call_command("doctor", "--lang", "en", "--json", stdout=english)
    finally:
        doctor.dns_lookup = original
    answer = json.loads(english.getvalue())
    https = next(f for f in answer["findings"] if f["check"] == "https")
    assert "is not https" in https["message"]
    assert answer["summary"]["fail"] == run.fail


def test_a_relay_without_starttls_fails(relay, settings):
    found = doctor.Doctor(lookup=RecordedDns({})).relay_tls()
    assert found[0].status == "fail" and "STARTTLS" in found[0].message
