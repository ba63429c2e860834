"""The demo readers that `make run` loads into an empty database. All written for this project;
the addresses use reserved example domains, so no mail can reach a real person."""

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
