"""Leased claims on rows that several processes work through (the outbox, the mail outbox).

A claimer sets `lease_owner` and `lease_until` on the rows it takes; while it works on them a
LeaseKeeper pushes `lease_until` forward, so that a claimer that dies lets its rows go once the
short lease runs out, and one that is merely slow keeps them.
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger("shop.kit.lease")


class LeaseKeeper:
    """Renews one claim's lease every `every` seconds while its rows are worked on.

    A thread rather than renewals between rows: one row's work (an HTTP post, an SMTP exchange)
    may take up to its timeout, longer than the lease, and the rows must stay the claimer's
    meanwhile. The table must have `lease_owner` and `lease_until` (epoch seconds) columns.
    """

    def __init__(
        self,
        engine: Engine,
        table: sa.Table,
        owner: str,
        *,
        lease_seconds: float,
        every: float,
        name: str,
    ) -> None:
        self._engine = engine
        self._table = table
        self._owner = owner
        self._lease_seconds = lease_seconds
        self._every = every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=name, daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        table = self._table
        while not self._done.wait(self._every):
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        table.update()
                        .where(table.c.lease_owner == self._owner)
                        .values(lease_until=time.time() + self._lease_seconds)
                    )
            except sa.exc.SQLAlchemyError as error:
                log.warning(
                    "could not renew the lease of the rows of %s being worked on",
                    table.name,
                    extra={"outcome": "lease_renewal_failed", "error": str(error)[:300]},
                )
