import uuid

from django.conf import settings
from huey.storage import RedisStorage, SqliteStorage
from huey.utils import load_class


def test_the_configured_queue_really_queues_and_runs_a_task():
    """Huey on Redis when REDIS_URL is set, on SQLite otherwise: a task goes in and comes out.

    A queue of its own name, so a running platform's queue is never touched.
    """
    config = {
        key: value
        for key, value in settings.HUEY.items()
        if key not in ("huey_class", "name", "consumer")
    }
    huey = load_class(settings.HUEY["huey_class"])(f"merumaga-test-{uuid.uuid4().hex}", **config)
    expected = RedisStorage if settings.REDIS_URL else SqliteStorage
    assert isinstance(huey.storage, expected)
    assert huey.immediate is False

    @huey.task()
    def add(a, b):
        return a + b

    try:
        result = add(2, 3)
        assert huey.pending_count() == 1
        huey.execute(huey.dequeue())
        assert result.get() == 5
        assert huey.pending_count() == 0
    finally:
        huey.flush()
