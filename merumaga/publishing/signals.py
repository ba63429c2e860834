"""Published content, announced to the apps after this one (mailings) without importing them.

Each is sent once the publishing transaction has committed, with `instance` the published object.
"""

from django.dispatch import Signal

article_published = Signal()
report_published = Signal()
event_published = Signal()
