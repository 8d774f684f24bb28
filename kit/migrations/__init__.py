"""The history of the kit's tables in every service's database (outbox, processed events,
request keys).

The revisions are in versions/; runner.py runs them (and every service's history) at start,
`python -m kit.migrate` for operators. docs/deploy.md says how a schema change is made.
"""

from __future__ import annotations

from pathlib import Path

# Their tables are KIT_METADATA's: the history's metadata is complete once they are imported.
from kit import idempotency, outbox, request_keys  # noqa: F401
from kit.database import KIT_METADATA
from kit.migrations.runner import History

KIT_HISTORY = History(
    "kit",
    Path(__file__).with_name("versions"),
    KIT_METADATA,
    # What main's create_all made before this history existed: a database with these tables and
    # no version table is at revision 0001.
    legacy_tables=("kit_outbox", "kit_processed_events"),
)
