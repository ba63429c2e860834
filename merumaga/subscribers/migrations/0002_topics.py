from django.db import migrations

TOPICS = [
    (
        "weekly",
        "週報",
        "Weekly report",
        "毎週、その週に公開した記事の要約をまとめてお届けします。",
        "Every week, digests of the articles published that week.",
    ),
    (
        "articles",
        "記事配信",
        "New articles",
        "新しい記事を公開するたびにお届けします。",
        "Each new article as it is published.",
    ),
    (
        "reports",
        "研究レポート（コンパクト版）",
        "Research reports (compact)",
        "コンパクト版の研究レポートを公開したときにお届けします。",
        "Compact research reports when they are published.",
    ),
    (
        "events",
        "イベントのお知らせ・招待状",
        "Events and invitations",
        "セミナーや説明会のご案内と招待状をお届けします。",
        "Notices of and invitations to seminars and briefings.",
    ),
]


def create_topics(apps, schema_editor):
    Topic = apps.get_model("subscribers", "Topic")
    for position, (key, name, name_en, description, description_en) in enumerate(TOPICS):
        Topic.objects.update_or_create(
            key=key,
            defaults={
                "name": name,
                "name_en": name_en,
                "description": description,
                "description_en": description_en,
                "position": position,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0001_initial")]
    operations = [migrations.RunPython(create_topics, migrations.RunPython.noop)]
