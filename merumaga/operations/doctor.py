"""`merumaga doctor`: would a real domain's mail from this setup reach the inbox? Each check
says ok, warn or fail, why, and what to change: for DNS, the exact record to add.

DNS goes through `Lookup` (dnspython in production, recorded answers in the tests): no check
reads the network but through it, except the relay's TLS and the site's HTTPS, which connect to
what this platform itself uses.
"""

import ipaddress
import smtplib
import ssl
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils.translation import gettext as _

from merumaga.institute.services import sender_identity
from merumaga.outcomes.figures import COMPLAINT_LIMIT, COMPLAINT_WARNING, deliverability
from merumaga.relays import all_relays, uses_catcher

OK, WARN, FAIL = "ok", "warn", "fail"
DEMO_CONTACT = "contact@example.jp"  # the embedded default's (settings.CONTACT_EMAIL)
SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4
# Second-level labels under which a registrable domain has three labels (example.co.jp).
SHARED_SECOND_LEVELS = {"co", "ne", "or", "ac", "go", "ed", "gr", "lg", "ad", "com", "org", "net"}


class DnsTrouble(Exception):
    """The resolver did not answer (a timeout, no server): not the same as "no such record"."""


# name, record type -> the answers as text: TXT strings joined, "preference host" for MX,
# addresses for A/AAAA, names for PTR; [] when there is no such record.
Lookup = Callable[[str, str], list[str]]


def dns_lookup(name: str, rdtype: str) -> list[str]:
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, rdtype, lifetime=5.0)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as error:
        raise DnsTrouble(f"{name} {rdtype}: {error}") from None
    if rdtype == "TXT":
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]
    if rdtype == "MX":
        return [f"{record.preference} {record.exchange.to_text()}" for record in answer]
    return [record.to_text() for record in answer]


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    message: str
    fix: str = ""  # what to do; for DNS, the record to add


def _registrable(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in SHARED_SECOND_LEVELS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _txt(lookup: Lookup, name: str, prefix: str) -> list[str]:
    return [text for text in lookup(name, "TXT") if text.lower().startswith(prefix.lower())]


class Doctor:
    def __init__(self, lookup: Lookup = dns_lookup) -> None:
        self.lookup = lookup
        self.from_domain = sender_identity().from_email.rsplit("@", 1)[-1].lower()
        self.envelope_domain = settings.BOUNCE_DOMAIN.lower()

    def run(self) -> list[Finding]:
        checks = [
            self.spf,
            self.dkim,
            self.dmarc,
            self.mx,
            self.reverse_dns,
            self.relay_tls,
            self.https,
            self.sender_identity,
            self.bulk_sender_rules,
        ]
        findings = []
        for check in checks:
            try:
                findings.extend(check())
            except DnsTrouble as error:
                findings.append(
                    Finding(
                        check.__name__,
                        WARN,
                        _("DNSの問い合わせに失敗しました: %(error)s") % {"error": error},
                    )
                )
        return findings

    # Where mail goes from.

    def sending_addresses(self) -> list[str]:
        """The addresses receivers see mail come from: the configured relays' (the relay hands
        it on), or MERUMAGA_SENDING_IPS when the operator names them."""
        if settings.SENDING_IPS:
            return list(settings.SENDING_IPS)
        if uses_catcher():
            return []
        found: list[str] = []
        for relay in all_relays():
            try:
                found.append(str(ipaddress.ip_address(relay.host)))
            except ValueError:
                found += self.lookup(relay.host, "A") + self.lookup(relay.host, "AAAA")
        return found

    def spf(self) -> list[Finding]:
        domain = self.envelope_domain
        records = _txt(self.lookup, domain, "v=spf1")
        addresses = self.sending_addresses()
        wanted = " ".join(f"ip6:{a}" if ":" in a else f"ip4:{a}" for a in addresses) or "ip4:" + _(
            "<送信サーバーのIPアドレス>"
        )
        record = f'{domain}. TXT "v=spf1 {wanted} -all"'
        if not records:
            return [
                Finding(
                    "spf",
                    FAIL,
                    _("%(domain)s にSPFレコードがありません。") % {"domain": domain},
                    record,
                )
            ]
        if len(records) > 1:
            return [
                Finding(
                    "spf",
                    FAIL,
                    _("%(domain)s にSPFレコードが複数あります (1つにまとめてください)。")
                    % {"domain": domain},
                    record,
                )
            ]
        if not addresses:
            return [
                Finding(
                    "spf",
                    WARN,
                    _(
                        "送信元のIPアドレスが分かりません (リレー未設定、"
                        "またはMERUMAGA_SENDING_IPS)。"
                        "SPFが実際の送信元を含むか確かめてください。"
                    ),
                    record,
                )
            ]
        refused = [
            a for a in addresses if not self._spf_allows(domain, ipaddress.ip_address(a), [0])
        ]
        if refused:
            return [
                Finding(
                    "spf",
                    FAIL,
                    _("SPFが送信元 %(addresses)s を許可していません。")
                    % {"addresses": ", ".join(refused)},
                    record,
                )
            ]
        return [
            Finding(
                "spf",
                OK,
                _("SPFは送信元 %(addresses)s を許可しています。")
                % {"addresses": ", ".join(addresses)},
            )
        ]

    def _spf_allows(self, domain: str, address, lookups: list[int]) -> bool:
        records = _txt(self.lookup, domain, "v=spf1")
        if not records:
            return False
        for term in records[0].split()[1:]:
            qualifier = term[0] if term[0] in "+-~?" else "+"
            term = term.lstrip("+-~?")
            name, _sep, value = term.partition(":")
            if "=" in term and term.split("=", 1)[0].lower() == "redirect":
                lookups[0] += 1
                return lookups[0] <= SPF_LOOKUP_LIMIT and self._spf_allows(
                    term.split("=", 1)[1], address, lookups
                )
            matched = False
            name = name.lower().split("/")[0]
            if name in ("ip4", "ip6"):
                try:
                    matched = address in ipaddress.ip_network(value, strict=False)
                except ValueError:
                    matched = False
            elif name in ("a", "mx"):
                lookups[0] += 1
                target = (value or domain).split("/")[0]
                hosts = (
                    [target]
                    if name == "a"
                    else [mx.split()[-1] for mx in self.lookup(target, "MX")]
                )
                ips = [
                    ip
                    for host in hosts
                    for ip in self.lookup(host, "A") + self.lookup(host, "AAAA")
                ]
                matched = str(address) in ips
            elif name == "include":
                lookups[0] += 1
                matched = lookups[0] <= SPF_LOOKUP_LIMIT and self._spf_allows(
                    value, address, lookups
                )
            elif name == "all":
                matched = True
            if matched:
                return qualifier == "+"
        return False

    def dkim(self) -> list[Finding]:
        if not settings.DKIM_DOMAIN:
            return [
                Finding(
                    "dkim",
                    WARN,
                    _(
                        "このプラットフォームではDKIM署名をしていません。リレーが %(domain)s "
                        "のドメインで署名していることを確かめてください。"
                    )
                    % {"domain": self.from_domain},
                    _(
                        "MERUMAGA_DKIM_DOMAIN、_SELECTOR、_KEY_FILE を設定するか、"
                        "リレー側で署名してください。"
                    ),
                )
            ]
        name = f"{settings.DKIM_SELECTOR}._domainkey.{settings.DKIM_DOMAIN}"
        with open(settings.DKIM_KEY_FILE, "rb") as key_file:
            private = serialization.load_pem_private_key(key_file.read(), password=None)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        expected = b64encode(public).decode()
        record = f'{name}. TXT "v=DKIM1; k=rsa; p={expected}"'
        published = _txt(self.lookup, name, "v=DKIM1") or [
            t for t in self.lookup(name, "TXT") if "p=" in t
        ]
        if not published:
            return [
                Finding(
                    "dkim",
                    FAIL,
                    _("DKIMの公開鍵 (%(name)s) が公開されていません。") % {"name": name},
                    record,
                )
            ]
        tags = dict(part.strip().split("=", 1) for part in published[0].split(";") if "=" in part)
        if tags.get("p", "").replace(" ", "") != expected:
            return [
                Finding(
                    "dkim",
                    FAIL,
                    _("公開されているDKIMの鍵が、署名に使う秘密鍵と一致しません。"),
                    record,
                )
            ]
        if _registrable(settings.DKIM_DOMAIN) != _registrable(self.from_domain):
            return [
                Finding(
                    "dkim",
                    WARN,
                    _("DKIMのドメインが差出人 (%(domain)s) と揃っていません (DMARCの整合)。")
                    % {"domain": self.from_domain},
                )
            ]
        return [
            Finding(
                "dkim", OK, _("DKIMの公開鍵は秘密鍵と一致しています (%(name)s)。") % {"name": name}
            )
        ]

    def dmarc(self) -> list[Finding]:
        name = f"_dmarc.{self.from_domain}"
        record = f'{name}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{self.from_domain}"'
        found = _txt(self.lookup, name, "v=DMARC1")
        if not found:
            organisation = _registrable(self.from_domain)
            found = (
                _txt(self.lookup, f"_dmarc.{organisation}", "v=DMARC1")
                if organisation != self.from_domain
                else []
            )
        if not found:
            return [
                Finding(
                    "dmarc",
                    FAIL,
                    _(
                        "差出人ドメイン %(domain)s にDMARCレコードがありません "
                        "(Gmail・Yahoo!の一斉送信者の要件)。"
                    )
                    % {"domain": self.from_domain},
                    record,
                )
            ]
        tags = {
            k.strip().lower(): v.strip()
            for k, _s, v in (p.partition("=") for p in found[0].split(";"))
        }
        aligned = _registrable(self.envelope_domain) == _registrable(self.from_domain) or (
            settings.DKIM_DOMAIN
            and _registrable(settings.DKIM_DOMAIN) == _registrable(self.from_domain)
        )
        findings = []
        if not aligned:
            findings.append(
                Finding(
                    "dmarc",
                    FAIL,
                    _(
                        "エンベロープ (%(envelope)s) もDKIMも差出人 (%(domain)s) "
                        "のドメインと揃っていません。DMARCに合格しません。"
                    )
                    % {"envelope": self.envelope_domain, "domain": self.from_domain},
                    _(
                        "MERUMAGA_BOUNCE_DOMAIN を差出人と同じドメイン (のサブドメイン) "
                        "にしてください。"
                    ),
                )
            )
        policy = tags.get("p", "").lower()
        if policy == "none":
            findings.append(
                Finding(
                    "dmarc",
                    WARN,
                    _(
                        "DMARCのポリシーが p=none です。届くことを確かめたら quarantine か reject "
                        "に上げてください。"
                    ),
                )
            )
        elif policy not in ("quarantine", "reject"):
            findings.append(
                Finding("dmarc", FAIL, _("DMARCレコードにポリシー (p=) がありません。"), record)
            )
        return findings or [
            Finding(
                "dmarc",
                OK,
                _("DMARCは p=%(policy)s で、差出人と揃っています。") % {"policy": policy},
            )
        ]

    def mx(self) -> list[Finding]:
        domain = self.envelope_domain
        host = settings.MX_HOST or _("<バウンス受信サーバーのホスト名>")
        record = f"{domain}. MX 10 {host}."
        exchanges = [answer.split()[-1].rstrip(".").lower() for answer in self.lookup(domain, "MX")]
        if not exchanges:
            return [
                Finding(
                    "mx",
                    FAIL,
                    _("%(domain)s にMXレコードがありません。バウンスと配信停止メールが届きません。")
                    % {"domain": domain},
                    record,
                )
            ]
        if settings.MX_HOST and settings.MX_HOST.lower().rstrip(".") not in exchanges:
            return [
                Finding(
                    "mx",
                    FAIL,
                    _(
                        "%(domain)s のMX (%(found)s) が、バウンス受信サーバー %(host)s "
                        "を指していません。"
                    )
                    % {"domain": domain, "found": ", ".join(exchanges), "host": settings.MX_HOST},
                    record,
                )
            ]
        if not settings.MX_HOST:
            return [
                Finding(
                    "mx",
                    WARN,
                    _(
                        "MXは %(found)s です。MERUMAGA_MX_HOST "
                        "にバウンス受信サーバーのホスト名を設定すると、ここで確かめます。"
                    )
                    % {"found": ", ".join(exchanges)},
                )
            ]
        return [
            Finding(
                "mx",
                OK,
                _("%(domain)s のMXはバウンス受信サーバー %(host)s を指しています。")
                % {"domain": domain, "host": settings.MX_HOST},
            )
        ]

    def reverse_dns(self) -> list[Finding]:
        addresses = self.sending_addresses()
        if not addresses:
            return [
                Finding(
                    "ptr", WARN, _("送信元のIPアドレスが分からないため、逆引きを確かめられません。")
                )
            ]
        findings = []
        for address in addresses:
            names = [
                n.rstrip(".")
                for n in self.lookup(ipaddress.ip_address(address).reverse_pointer, "PTR")
            ]
            confirmed = [
                n for n in names if address in self.lookup(n, "AAAA" if ":" in address else "A")
            ]
            if not confirmed:
                findings.append(
                    Finding(
                        "ptr",
                        FAIL,
                        _(
                            "%(address)s の逆引き (PTR) が、"
                            "正引きで同じアドレスに戻る名前になっていません。"
                        )
                        % {"address": address},
                        _(
                            "IPアドレスの管理者 (プロバイダ) に、%(address)s "
                            "のPTRを送信サーバーのホスト名にするよう依頼し、"
                            "そのホスト名のAレコードを %(address)s にしてください。"
                        )
                        % {"address": address},
                    )
                )
        return findings or [Finding("ptr", OK, _("送信元の逆引きは正引きと一致しています。"))]

    def relay_tls(self) -> list[Finding]:
        if uses_catcher():
            return [
                Finding(
                    "relay_tls",
                    WARN,
                    _(
                        "メールは内蔵のメールキャッチャーに届き、外へは出ません (SMTP_RELAYS か "
                        "SMTP_URL を設定してください)。"
                    ),
                )
            ]
        findings = []
        for relay in all_relays():
            problem = self._tls_problem(relay)
            if problem:
                findings.append(
                    Finding(
                        "relay_tls",
                        FAIL,
                        _("リレー %(relay)s: %(problem)s")
                        % {"relay": relay.name, "problem": problem},
                        _(
                            "リレーでSTARTTLS (または SMTPS) と有効な証明書を使い、URLを "
                            "smtp+starttls:// か "
                            "smtps:// にしてください。"
                        ),
                    )
                )
        return findings or [
            Finding("relay_tls", OK, _("すべてのリレーがTLSと有効な証明書で接続できます。"))
        ]

    @staticmethod
    def _tls_problem(relay) -> str:
        context = ssl.create_default_context()
        try:
            if relay.security == "tls":
                with smtplib.SMTP_SSL(relay.host, relay.port, timeout=10, context=context) as smtp:
                    smtp.ehlo()
                return ""
            with smtplib.SMTP(relay.host, relay.port, timeout=10) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    return _("STARTTLSが提供されていません。")
                smtp.starttls(context=context)
        except ssl.SSLError as error:
            return _("証明書を検証できません (%(error)s)。") % {"error": error.reason or error}
        except (OSError, smtplib.SMTPException) as error:
            return _("接続できません (%(error)s)。") % {"error": error}
        return ""

    def https(self) -> list[Finding]:
        site = urlsplit(settings.SITE_URL)
        if site.scheme != "https":
            return [
                Finding(
                    "https",
                    FAIL,
                    _(
                        "SITE_URL (%(url)s) が https ではありません。配信停止リンク "
                        "(List-Unsubscribe) "
                        "はHTTPSで答える必要があります。"
                    )
                    % {"url": settings.SITE_URL},
                    _(
                        "SITE_URL=https://<公開ホスト名> とし、"
                        "リバースプロキシでTLSを終端してください。"
                    ),
                )
            ]
        try:
            with urllib.request.urlopen(f"{settings.SITE_URL}/healthz", timeout=10) as page:
                page.read()
        except OSError as error:
            return [
                Finding(
                    "https",
                    FAIL,
                    _("%(url)s にHTTPSで接続できません (%(error)s)。")
                    % {"url": settings.SITE_URL, "error": error},
                )
            ]
        return [
            Finding("https", OK, _("%(url)s はHTTPSで答えています。") % {"url": settings.SITE_URL})
        ]

    def sender_identity(self) -> list[Finding]:
        identity = sender_identity()
        missing = [
            label
            for label, value in (
                (_("住所"), identity.postal_address),
                (_("連絡先"), identity.contact_email or identity.contact_url),
            )
            if not value.strip()
        ]
        if missing:
            return [
                Finding(
                    "sender",
                    FAIL,
                    _("特定電子メール法で表示が必要な項目が空です: %(fields)s")
                    % {"fields": ", ".join(missing)},
                    _("管理画面の「サイト設定」で入力してください。"),
                )
            ]
        if "デモ" in identity.postal_address or identity.contact_email == DEMO_CONTACT:
            return [
                Finding(
                    "sender",
                    FAIL,
                    _("送信者の住所か連絡先がデモの値のままです。"),
                    _("管理画面の「サイト設定」で、実際の住所と連絡先を入力してください。"),
                )
            ]
        return [
            Finding(
                "sender", OK, _("送信者の名称・住所・連絡先が入力されています (特定電子メール法)。")
            )
        ]

    def bulk_sender_rules(self) -> list[Finding]:
        figures = deliverability(days=30)
        rate = figures.rate(figures.complaints)
        shown = f"{rate:.2%}" if rate is not None else "—"
        if rate is not None and rate >= COMPLAINT_LIMIT:
            return [
                Finding(
                    "bulk_rules",
                    FAIL,
                    _(
                        "迷惑メール報告率が %(rate)s です (30日間)。Gmail・Yahoo!の上限 0.3%% "
                        "を超えています。"
                    )
                    % {"rate": shown},
                    _("送信頻度と内容を見直し、同意のない宛先を除いてください。"),
                )
            ]
        if rate is not None and rate >= COMPLAINT_WARNING:
            return [
                Finding(
                    "bulk_rules",
                    WARN,
                    _("迷惑メール報告率が %(rate)s です (30日間)。0.1%% 未満を保ってください。")
                    % {"rate": shown},
                )
            ]
        return [
            Finding(
                "bulk_rules",
                OK,
                _(
                    "ワンクリック配信停止 (RFC 8058) を全メールに付けています。迷惑メール報告率は "
                    "%(rate)s です (30日間)。"
                )
                % {"rate": shown},
            )
        ]


def summary(findings: list[Finding]) -> dict[str, int]:
    return {status: sum(f.status == status for f in findings) for status in (OK, WARN, FAIL)}


def as_dicts(findings: list[Finding]) -> list[dict[str, str]]:
    return [asdict(finding) for finding in findings]
