import time

import pytest
from django.core import signing

from merumaga.subscribers import tokens
from merumaga.testing import make_subscriber

pytestmark = pytest.mark.django_db


def test_round_trip_carries_the_topic():
    reader = make_subscriber()
    token = tokens.make_token(reader, tokens.UNSUBSCRIBE, "weekly")
    assert tokens.read_token(token, tokens.UNSUBSCRIBE) == (reader, "weekly")


def test_a_token_for_one_purpose_is_refused_for_another():
    reader = make_subscriber()
    token = tokens.make_token(reader, tokens.PREFERENCES)
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(token, tokens.UNSUBSCRIBE)


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-2] + "xx", lambda t: "x" + t, lambda t: "", str.upper]
)
def test_tampered_tokens_are_refused(mangle):
    reader = make_subscriber()
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(mangle(tokens.make_token(reader, tokens.CONFIRM)), tokens.CONFIRM)


def test_rotating_the_nonce_revokes_old_links():
    reader = make_subscriber()
    token = tokens.make_token(reader, tokens.PREFERENCES)
    reader.nonce = "rotated"
    reader.save()
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(token, tokens.PREFERENCES)


def test_confirmation_links_expire(settings, monkeypatch):
    reader = make_subscriber()
    token = tokens.make_token(reader, tokens.CONFIRM)
    assert tokens.read_token(token, tokens.CONFIRM)[0] == reader
    later = time.time() + settings.CONFIRMATION_MAX_AGE_DAYS * 86400 + 1
    monkeypatch.setattr(signing.time, "time", lambda: later)
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(token, tokens.CONFIRM)
    # Preference and unsubscribe links in old mails keep working.
    assert tokens.read_token(tokens.make_token(reader, tokens.PREFERENCES), tokens.PREFERENCES)
