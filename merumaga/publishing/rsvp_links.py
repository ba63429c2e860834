"""The links in RSVP mails and pages: a reader's own answer page for an event, and the page where
someone who answered changes their answer. Made here, read back by publishing.rsvp; the mails
(tasks_rsvp) and the mailings' invitations only make them.
"""

from django.core import signing
from django.urls import reverse

from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers import tokens
from merumaga.subscribers.mail import absolute_url

ANSWER_LINK_SALT = "merumaga.publishing.rsvp-answer"


def rsvp_link_url(subscriber: tokens.TokenHolder, event: Event) -> str:
    """The reader's own answer page for this event, for invitation mails: no form to fill."""
    token = tokens.make_token(subscriber, tokens.RSVP, str(event.pk))
    return absolute_url(reverse("rsvp_link", args=[token]))


def answer_token(reply: Rsvp) -> str:
    """The token of the page where this person, and only they (the link is in their own mail),
    can change their answer: no one can give back another's seat."""
    return signing.dumps([reply.pk, reply.email], salt=ANSWER_LINK_SALT)


def answer_link_url(reply: Rsvp) -> str:
    return absolute_url(reverse("rsvp_answer_link", args=[answer_token(reply)]))
