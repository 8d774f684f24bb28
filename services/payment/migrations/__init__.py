"""The history of the payment service's tables (store.py): its revisions are in versions/.

kit/migrations/runner.py runs it at start; docs/deploy.md says how a schema change is made.
"""

from __future__ import annotations

from pathlib import Path

from kit.migrations.runner import History
from services.payment import store

HISTORY = History(
    "payment",
    Path(__file__).with_name("versions"),
    store.metadata,
    # What main's create_all made before this history existed: a database with these tables and
    # no version table is at revision 0001.
    legacy_tables=("payments",),
)
