"""A bounce reader process's entry point (spawned by `merumaga bounce-receiver`).

On its own because a spawned process imports its target before Django is set up: this module
imports nothing that needs Django's apps until it has set them up.
"""


def run_reader(kept, stopping, share: tuple[int, int]) -> None:
    import os
    import signal

    import django

    # Ctrl-C in a terminal reaches the whole process group: the server stops us (`stopping`)
    # after the batch in hand, rather than an interrupt in the middle of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # Below the server: answering the sending MTAs comes first (they wait on us, and a slow
    # answer makes them back off); what is kept is read as soon as there is time.
    os.nice(10)

    django.setup()
    from merumaga.bounces.server import read_until_stopped

    read_until_stopped(kept, stopping, share=share)
