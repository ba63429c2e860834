import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "merumaga.settings")
django_application = get_wsgi_application()

# After Django is set up: click redirects are answered before Django (mailings/clicks.py).
from merumaga.mailings.clicks import answer_before_django  # noqa: E402

application = answer_before_django(django_application)
