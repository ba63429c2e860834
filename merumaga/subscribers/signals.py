"""What the subscribers app tells apps that come after it, without importing them."""

from collections.abc import Callable
from dataclasses import dataclass

from django.dispatch import Signal

# Sent inside erase()'s transaction: subscriber=the reader, already without personal data. Apps
# holding copies of what the reader's mail contained (bounces) forget them in the same commit.
reader_erased = Signal()

# Sent inside change_address()'s transaction: subscriber=the reader at the new address,
# old_email=the address they left. Apps keyed by address (RSVPs) follow them.
address_changed = Signal()

# Sent inside confirm() and change_address(): subscriber=the reader whose address's owner just
# opened a link mailed to it. Apps that stopped mail to the address (bounces) may take it back.
address_confirmed = Signal()

# Sent by export_data(): subscriber=the reader. A receiver returns (section name, rows) for what
# its app keeps about the reader (clicks, when kept per reader), and "download my data" adds it.
reader_data_requested = Signal()

# Sent inside an import chunk's or add_with_consent()'s transaction: records=the consent records
# written in bulk (bulk_create sends no post_save), for apps that follow every consent record.
consent_recorded_in_bulk = Signal()

# Sent by the preference centre: subscriber=the reader. A receiver may answer a ReaderChoice: a
# set of options the reader ticks there (research fields), saved by the receiver's app.
reader_choices_requested = Signal()


@dataclass
class ReaderChoice:
    key: str  # the form's field is choice-<key>
    label: str
    help: str
    options: list[tuple[int, str]]  # (value, label)
    chosen: set[int]
    save: Callable[[list[int]], None]  # called with the values ticked, after a valid POST
