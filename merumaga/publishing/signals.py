"""Published content, announced to the apps after this one (mailings) without importing them.

Each is sent once the publishing transaction has committed, with `instance` the published object.
"""

from django.dispatch import Signal

article_published = Signal()
report_published = Signal()
event_published = Signal()

# Sent by the editor's 「保存して通知メールをプレビュー」, with `instance` the saved item and `by`
# the editor. The announcement's app answers with the URL of its preview, where the editor can
# look at the mail and test-send it before publishing.
announcement_preview_requested = Signal()
