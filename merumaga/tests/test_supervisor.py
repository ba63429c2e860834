"""`merumaga run` keeps the platform up: a process that dies is logged and started again, after a
delay that doubles while it keeps dying quickly. Fake processes and a fake clock: no waiting."""

from merumaga.management.commands.run import MAX_DELAY, STEADY_SECONDS, Supervisor


class FakeProcess:
    def __init__(self, argv):
        self.argv, self.exit_code, self.signals = argv, None, []

    def poll(self):
        return self.exit_code

    def send_signal(self, signum):
        self.signals.append(signum)
        self.exit_code = -signum

    def wait(self, timeout=None):
        return self.exit_code


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def supervisor():
    clock, spawned, log = Clock(), [], []

    def spawn(argv):
        spawned.append(FakeProcess(argv))
        return spawned[-1]

    watched = Supervisor(
        {"web": ["web"], "delivery": ["worker"]}, spawn=spawn, clock=clock, log=log.append
    )
    watched.start_all()
    return watched, clock, spawned, log


def last(spawned, argv):
    return [process for process in spawned if process.argv == [argv]][-1]


def test_a_child_that_dies_is_started_again_and_the_others_are_left_alone():
    watched, clock, spawned, log = supervisor()
    web = last(spawned, "web")
    last(spawned, "worker").exit_code = 1
    clock.now += 5
    watched.tick()
    assert "delivery stopped (exit 1) after 5 s; starting it again in 1 s" in log
    clock.now += 1
    watched.tick()
    assert len(spawned) == 3 and last(spawned, "worker").exit_code is None
    assert web.signals == [] and web.exit_code is None  # untouched
    assert "delivery started again" in log


def test_a_crash_loop_waits_longer_each_time_up_to_a_minute():
    watched, clock, spawned, _log = supervisor()
    delays = []
    for _ in range(9):
        last(spawned, "worker").exit_code = 1
        watched.tick()
        delay = watched.children["delivery"].start_at - clock.now
        delays.append(delay)
        clock.now += delay
        watched.tick()
    assert delays == [1, 2, 4, 8, 16, 32, MAX_DELAY, MAX_DELAY, MAX_DELAY]


def test_a_child_that_ran_steadily_before_dying_starts_again_at_once():
    watched, clock, spawned, log = supervisor()
    for _ in range(3):  # a few quick deaths first
        last(spawned, "worker").exit_code = 1
        watched.tick()
        clock.now = watched.children["delivery"].start_at
        watched.tick()
    clock.now += STEADY_SECONDS
    last(spawned, "worker").exit_code = 1
    before = len(spawned)
    watched.tick()
    assert len(spawned) == before + 1 and last(spawned, "worker").exit_code is None
    assert log[-2].endswith("starting it again in 0 s")


def test_stop_all_stops_every_running_child():
    watched, _clock, spawned, _log = supervisor()
    watched.stop_all(timeout=0.1)
    assert all(process.signals for process in spawned)
