"""The store's errors: the one place database errors become words a person may read (see the backends)."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot be used; the message names BACKUPBOT_DB where that helps, and is safe to print."""


class StoreUnavailable(StoreError):
    """A read or write failed: the file is locked by another process, read-only, or damaged; or PostgreSQL
    is not answering or refused a query. Work that meets it waits for the next chance; a person is told."""


class WouldWait(StoreUnavailable):
    """A read asked for at once (`Store.read_now`) that would have to wait: the caller reads in a thread instead."""
