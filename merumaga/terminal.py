"""Progress on the terminal for long commands (rich), shared by the commands that report it."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn


@contextmanager
def progress_bar(
    description: str, *, transient: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr (stdout stays for results), and the progress(done, total) callback that
    the services' long jobs call to move it."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
