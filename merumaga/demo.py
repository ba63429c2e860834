"""The demo readers that `make run` loads into an empty database. All written for this project;
the addresses use reserved example domains, so no mail can reach a real person."""

from typing import TypedDict

from django.db import transaction
from django.utils import timezone

from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic

ALL = ("weekly", "articles", "reports", "events")

# (address, name, organisation, topics, charset)
READERS = [
    ("sato.haruka@example.jp", "佐藤 遥", "東邦電池株式会社", ALL, "utf-8"),
    ("suzuki.ken@example.jp", "鈴木 健", "北辰モビリティ", ("weekly",), "utf-8"),
    ("takahashi.mio@example.co.jp", "高橋 美緒", "みなと総合研究所", ALL, "utf-8"),
    (
        "tanaka.yuto@example.ne.jp",
        "田中 悠斗",
        "",
        ("articles", "reports", "events"),
        "iso-2022-jp",
    ),
    ("ito.sakura@example.com", "伊藤 さくら", "関東自動車部品工業", ("weekly", "events"), "utf-8"),
    ("watanabe.ryo@example.jp", "渡辺 亮", "AIラボ合同会社", ALL, "utf-8"),
    ("yamamoto.aoi@example.ne.jp", "山本 葵", "", ("weekly", "reports"), "iso-2022-jp"),
    ("nakamura.sho@example.co.jp", "中村 翔", "西日本商事", ("articles",), "utf-8"),
    ("kobayashi.emi@example.com", "小林 恵美", "ひかり証券 調査部", ALL, "utf-8"),
    ("kato.daiki@example.jp", "", "", ("weekly",), "utf-8"),
    ("yoshida.nana@example.org", "吉田 奈々", "東都大学 工学部", ("reports", "events"), "utf-8"),
    ("li.wei@example.com", "Li Wei", "Shenzhen Example Tech", ("weekly", "articles"), "utf-8"),
    # No such mailbox: the mail catcher answers every mail to it with a DSN (user unknown), so
    # the first mailing shows the bounce loop: 不達・苦情 in the admin, and the reader suppressed.
    ("nosuchuser@example.jp", "不達 テスト", "", ALL, "utf-8"),
]


def load_demo_readers() -> int:
    """Create the demo readers as confirmed, with their consent records. Returns how many."""
    topics = {topic.key: topic for topic in Topic.objects.all()}
    now = timezone.now()
    with transaction.atomic():
        for email, name, organisation, keys, charset in READERS:
            subscriber = Subscriber.objects.create(
                email=email,
                name=name,
                organisation=organisation,
                charset=charset,
                language="en" if email.startswith("li.") else "ja",
                status=Subscriber.Status.CONFIRMED,
                confirmed_at=now,
            )
            Subscription.objects.bulk_create(
                Subscription(subscriber=subscriber, topic=topics[key]) for key in keys
            )
            ConsentRecord.objects.create(
                subscriber=subscriber,
                email=email,
                action=ConsentRecord.Action.SUBSCRIBE,
                source=ConsentRecord.Source.DEMO,
                topics=list(keys),
                wording="demo data",
            )
    return len(READERS)


class DemoArticle(TypedDict):
    title: str
    digest: str
    body: str
    source_name: str
    source_detail: str
    days_ago: int
    tags: list[str]


# The demo articles: digests of imagined sources, written for this project.
ARTICLES: list[DemoArticle] = [
    {
        "title": "中国の自動運転タクシー、郊外路線で無人運行の範囲を拡大",
        "digest": (
            "大手配車サービス各社が、郊外の幹線道路を含む区域で運転席無人の運行を広げている。"
            "遠隔監視の体制と保険の枠組みが整い、1台あたりの監視員の数が減ったことが背景にある。"
        ),
        "body": (
            "## 要点\n\n"
            "- 無人運行の区域が都市中心部から郊外の幹線道路へ広がった\n"
            "- 遠隔監視員1人が受け持つ車両数が増え、運行コストが下がった\n"
            "- 事故時の責任分担を定めた地方規則が整備された\n\n"
            "## 解説\n\n"
            "各社は夜間や悪天候時の運行データを積み上げ、行政の審査に提出している。"
            "日本の事業者にとっては、監視体制の設計と保険商品の組み立てが参考になる。"
        ),
        "source_name": "架空テック週報",
        "source_detail": "2026年11月第3週号",
        "tags": ["自動運転", "モビリティ"],
        "days_ago": 2,
    },
    {
        "title": "全固体電池の量産ライン、試作から小規模量産へ",
        "digest": (
            "電池メーカー数社が全固体電池の小規模量産ラインを立ち上げた。"
            "当面は高価格帯の車種と電動工具向けで、歩留まりの改善が普及の鍵となる。"
        ),
        "body": (
            "固体電解質の製造工程で湿度管理が難しく、歩留まりはまだ液系リチウムイオン電池に及ばない。"
            "一方で、安全性とエネルギー密度の利点から、プレミアム車種への搭載計画が相次いでいる。\n\n"
            "| 用途 | 時期の見通し |\n|---|---|\n"
            "| 高級EV | 2027年以降 |\n| 電動工具 | 先行して採用 |"
        ),
        "source_name": "架空エネルギー産業ニュース",
        "source_detail": "11月10日〜16日",
        "tags": ["電池", "EV"],
        "days_ago": 5,
    },
    {
        "title": "生成AIの大規模モデル、企業向けに軽量版の提供が相次ぐ",
        "digest": (
            "主要なAI企業が、自社の大規模言語モデルを蒸留した軽量版を企業向けに提供し始めた。"
            "社内サーバーで動かせることが、データの持ち出しを嫌う製造業に受け入れられている。"
        ),
        "body": (
            "軽量版は推論コストが大きく下がり、工場の保守記録の要約や設計文書の検索に使われている。"
            "評価指標の公開が進まない点は課題で、導入企業は自前の評価データを整えている。"
        ),
        "source_name": "架空AIビジネス",
        "source_detail": "2026年11月号",
        "tags": ["生成AI"],
        "days_ago": 8,
    },
    {
        "title": "EV用充電網、高速道路のサービスエリアで超急速充電器の設置が進む",
        "digest": (
            "高速道路のサービスエリアで、出力の大きい超急速充電器の設置が進んでいる。"
            "電力系統への負荷を抑えるため、蓄電池を併設する方式が主流になりつつある。"
        ),
        "body": (
            "設置事業者は、蓄電池を介して夜間電力をためることで、ピーク時の受電容量を抑えている。"
            "充電待ちの時間を減らす予約サービスも広がっている。"
        ),
        "source_name": "架空モビリティ研究",
        "source_detail": "第42号",
        "tags": ["EV", "電池"],
        "days_ago": 12,
    },
    {
        "title": "半導体の後工程、先端パッケージングへの投資が拡大",
        "digest": (
            "AI向け半導体の需要を受け、複数のチップを一つにまとめる先端パッケージングへの投資が増えている。"
            "装置と材料の国産化も同時に進められている。"
        ),
        "body": (
            "前工程の微細化に比べ、後工程は投資規模が小さく立ち上げが早い。"
            "日本の材料メーカーにとっては取引拡大の好機でもある。"
        ),
        "source_name": "架空半導体レビュー",
        "source_detail": "2026年秋号",
        "tags": ["半導体", "生成AI"],
        "days_ago": 16,
    },
]


def demo_pdf(title: str) -> bytes:
    """A one-page PDF written by hand (no PDF library needed): just enough for the demo."""
    text = f"BT /F1 18 Tf 72 720 Td ({title}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def load_demo_content() -> dict[str, int]:
    """Articles, a report and an event, published through the same services editors use."""
    from datetime import timedelta

    from django.core.files.base import ContentFile

    from merumaga.publishing import services
    from merumaga.publishing.models import Article, Event, Report, Tag

    now = timezone.now()
    for data in ARTICLES:
        article = Article(
            title=data["title"],
            digest=data["digest"],
            body=data["body"],
            source_name=data["source_name"],
            source_detail=data["source_detail"],
            author="メルマガ研究所 編集部",
            published_at=now - timedelta(days=data["days_ago"]),
        )
        services.prepare_article(article)
        article.save()
        for name in data["tags"]:
            tag, _ = Tag.objects.get_or_create(
                name=name, defaults={"slug": services.unique_slug(Tag, name, fallback="tag")}
            )
            article.tags.add(tag)
        services.publish_article(article, at=article.published_at)

    report = Report(
        title="中国EV電池サプライチェーンの現状 (コンパクト版)",
        summary=(
            "正極材・負極材・電解質・セパレーターの主要企業と生産能力をまとめ、"
            "日本企業にとっての調達上の論点を整理した。完全版は会員向けに提供している。"
        ),
        notify_subscribers=True,
    )
    services.prepare_report(report)
    pdf = ContentFile(demo_pdf("EV battery supply chain"))
    report.pdf.save("ev-battery-supply-chain.pdf", pdf, save=False)
    report.save()
    services.publish_report(report)

    starts = (now + timedelta(days=21)).replace(hour=6, minute=0, second=0, microsecond=0)
    event = Event(
        title="オンラインセミナー: 中国の自動運転、規制と事業化の最前線",
        description=(
            "研究員が、自動運転タクシーの事業化と規制の動きを解説します。\n\n"
            "- 第1部: 無人運行の現状 (40分)\n- 第2部: 質疑応答 (20分)"
        ),
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        venue="オンライン (Zoom)",
        capacity=30,
        registration_deadline=starts - timedelta(days=1),
        notify_subscribers=True,
    )
    services.prepare_event(event)
    event.save()
    services.publish_event(event)
    return {"articles": len(ARTICLES), "reports": 1, "events": 1}


class DemoNotSent(Exception):
    """The demo mailings could not be sent at set-up; the message says why and what follows."""


def load_demo_history() -> dict[str, int]:
    """Send the demo mailings for real, so that the admin's figures have something behind them.

    The announcements that publishing the demo content started, and a weekly report, go out
    through the delivery worker to the built-in mail catcher (started here for the moment, on
    its own port): they are in the mail viewer, and the catcher answers the mail to
    nosuchuser@ with a DSN, which the bounce pipeline reads. Then some readers act on what they
    got, through the same code as the site: three follow links (the click redirect's resolve
    and count), one leaves the weekly report with the link in it. Nothing is sent when a relay
    is configured: demo mail goes to the catcher only."""
    import re
    from email import policy
    from email.parser import BytesParser

    from django.conf import settings

    from merumaga.delivery.catcher import list_messages, raw_message, start_catcher
    from merumaga.delivery.worker import run_until_idle
    from merumaga.mailings import clicks
    from merumaga.mailings import services as mailings
    from merumaga.mailings.models import Mailing
    from merumaga.relays import uses_catcher
    from merumaga.subscribers import services as subscribers
    from merumaga.subscribers import tokens

    if not uses_catcher():
        return {}
    _spread_sign_ups()
    _choose_research_fields()
    weekly = mailings.compose_weekly().mailing
    if weekly is not None and weekly.status == Mailing.Status.DRAFT:
        weekly.intro = (
            "今週は、中国の自動運転と電池、生成AIの動きをお届けします。"
            "分野ごとにまとめましたので、目次から気になる記事へお進みください。"
        )
        weekly.grouping = Mailing.Grouping.TAG
        weekly.save(update_fields=["intro", "grouping", "updated_at"])
        mailings.start(weekly, note="demo")
    try:
        catcher = start_catcher(settings.MAILCATCHER_DIR, port=settings.MAILCATCHER_PORT)
    except OSError as error:  # another catcher (another instance) holds the port
        raise DemoNotSent(
            f"the mail catcher's port {settings.MAILCATCHER_PORT} is taken ({error}); the demo "
            "mailings stay queued and go out when the platform's own worker runs"
        ) from None
    try:
        run_until_idle()
    finally:
        catcher.stop()
    caught, _ = list_messages(settings.MAILCATCHER_DIR, limit=500)
    texts: dict[str, list[str]] = {}
    for message in caught:
        parsed = BytesParser(policy=policy.default).parsebytes(
            raw_message(settings.MAILCATCHER_DIR, message.key)
        )
        body = parsed.get_body(("plain",))
        texts.setdefault(parsed["To"], []).append(body.get_content() if body else "")
    clicked = 0
    for address in ("sato.haruka@example.jp", "watanabe.ryo@example.jp", "li.wei@example.com"):
        for text in texts.get(address, [])[:2]:
            for link in re.findall(r"/c/([0-9a-f]+-[0-9a-f]+)/", text)[:2]:
                target, reader = clicks.resolve(link)
                clicks.buffer.add(target, reader)
                clicked += 1
    clicks.buffer.flush()
    left = 0
    for text in texts.get("kato.daiki@example.jp", []):
        found = re.search(r"/unsubscribe/([^/\s]+)/\?m=(\d+)", text)
        if found:
            subscriber, topic = tokens.read_token(found[1], tokens.UNSUBSCRIBE)
            evidence = subscribers.Evidence(source="email_link", mailing_id=int(found[2]))
            subscribers.unsubscribe(subscriber, topic, evidence)
            left += 1
            break
    return {"mails sent": len(caught), "clicks": clicked, "unsubscribes": left}


def _choose_research_fields() -> None:
    """Two demo readers chose research fields: their weekly report puts those articles first."""
    from merumaga.publishing.models import Tag
    from merumaga.publishing.services import set_reader_interests

    for email, names in (
        ("li.wei@example.com", ["電池"]),
        ("ito.sakura@example.com", ["自動運転"]),
    ):
        reader = Subscriber.objects.filter(email=email).first()
        if reader is not None:
            set_reader_interests(
                reader.pk, Tag.objects.filter(name__in=names).values_list("pk", flat=True)
            )


def _spread_sign_ups() -> None:
    """The demo readers joined over the last two months, not all today (the readers chart)."""
    from datetime import timedelta

    now = timezone.now()
    for number, subscriber in enumerate(Subscriber.objects.order_by("pk")):
        joined = now - timedelta(days=60 - number * 4, hours=number)
        Subscriber.objects.filter(pk=subscriber.pk).update(created_at=joined, confirmed_at=joined)
        # Their demo sign-up records and subscriptions (written a moment ago by load_demo)
        # say the same day, so that each topic's table and chart agree with the readers'.
        ConsentRecord.objects.filter(
            subscriber=subscriber, source=ConsentRecord.Source.DEMO
        ).update(created_at=joined)
        Subscription.objects.filter(subscriber=subscriber).update(changed_at=joined)
