"""A reader's research fields: chosen in the preference centre (the tags), kept, shown in
"download my data", forgotten on erasure; a value that is not a field is refused, not dropped."""

import json

import pytest
from django.urls import reverse

from merumaga.publishing import interests
from merumaga.publishing.models import ReaderInterest, Tag
from merumaga.subscribers import services as subscriber_services
from merumaga.subscribers import tokens
from merumaga.subscribers.services import Evidence
from merumaga.testing import make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields():
    return [
        Tag.objects.create(name=name, slug=slug)
        for name, slug in (("AI", "ai"), ("電池", "battery"))
    ]


def form(*ticked, topics=("weekly", "articles")):
    return {
        "topics": list(topics),
        "language": "ja",
        "charset": "utf-8",
        "choice-fields": [str(tag.pk) for tag in ticked],
    }


def test_a_reader_chooses_fields_in_the_preference_centre(client, fields):
    ai, battery = fields
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    page = client.get(url).content.decode()
    assert "関心のある研究分野" in page and f'name="choice-fields" value="{battery.pk}"' in page

    assert client.post(url, form(battery)).status_code == 302
    assert interests.chosen_tags(reader.pk) == {battery.pk}
    page = client.get(url).content.decode()
    assert f'value="{battery.pk}" checked' in page and f'value="{ai.pk}" checked' not in page

    assert client.post(url, form(ai)).status_code == 302  # now only AI
    assert interests.chosen_tags(reader.pk) == {ai.pk}
    assert subscribed_keys(reader) == {"weekly", "articles"}


def test_a_value_that_is_no_field_is_refused_and_nothing_is_saved(client, fields):
    ai, _battery = fields
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    response = client.post(
        url, {**form(ai, topics=("weekly",)), "choice-fields": [str(ai.pk), "999999"]}
    )
    assert response.status_code == 400
    assert "選択肢にない値" in response.content.decode()
    assert interests.chosen_tags(reader.pk) == set()
    assert subscribed_keys(reader) != {"weekly"}  # the rest of the form was not saved either


def test_fields_are_in_the_readers_data_and_go_with_erasure(client, fields):
    ai, _battery = fields
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    client.post(url, form(ai))
    data = json.loads(
        client.get(
            reverse("preferences_data", args=[tokens.make_token(reader, tokens.PREFERENCES)])
        ).content
    )
    assert data["research_fields"] == [{"tag": "AI"}]
    subscriber_services.erase(reader, Evidence(source="email_link"))
    assert not ReaderInterest.objects.exists()


def test_without_tags_there_is_nothing_to_choose(client):
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    assert "関心のある研究分野" not in client.get(url).content.decode()
