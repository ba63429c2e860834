from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from merumaga.publishing import services


@db_periodic_task(crontab(minute="*"))
def publish_scheduled_content() -> int:
    return services.publish_due()


# Registered here so the consumer, which imports each app's tasks module, knows them.
from merumaga.publishing import drafts, tasks_rsvp  # noqa: E402, F401
