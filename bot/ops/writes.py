"""One way to send a write to the backup API, and what its outcome is.

Every write — a create, a delete, a restore — is sent by `Core.send_write`
(bot/ops/core.py), whichever path asked for it: a person directly, a delete at
the end of its undo window, a restore after its safety backup, an approved
request, making room. The write is recorded in the store (`writes`, state
`sending`) before the request goes out, and its outcome is classified once:

    done      the API answered 2xx (also when its answer could not be read)
    not done  the API refused it (4xx: bad request, not found, unauthorized,
              rate limited), or the connection could not be made, so the
              request never reached it
    unknown   the API may have acted: no answer in time, a 5xx, a connection
              that broke before the answer, an answer not understood, the
              bot stopping while it sent

Unknown is never told as not done. A write left `sending` by a bot that died
is settled by looking (`Core.settle_by_looking`): a delete whose backup is
gone was done, and one whose backup is still there was not; a create is found
by its tag (or its description, made after the write was recorded); a
restore stays unknown, since nothing the API lists can tell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.backup_api import (
    AcceptedButUnreadable,
    ApiTimeout,
    Backup,
    BackupApiError,
    BadRequest,
    NotFound,
    NotSent,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from bot.i18n import N_, Words
from bot.store import WriteState

# A write takes at most the API's timeout (seconds); one still `sending` long after was sent by a bot that died.
WRITE_SETTLE_SECONDS = 120.0
TAG = re.compile(r"\[[a-z]+ [A-Za-z0-9_-]+\]$")


class WriteKind(StrEnum):
    CREATE = "create"
    DELETE = "delete"
    RESTORE = "restore"


class WriteOutcome(StrEnum):
    DONE = "done"
    NOT_DONE = "not_done"
    UNKNOWN = "unknown"

    @property
    def state(self) -> WriteState:
        return WriteState(self.value)


@dataclass(frozen=True)
class Write:
    """A write to send: `server_id` is the server it changes (a restore's target)."""

    kind: WriteKind
    server_id: int
    backup_id: int | None = None  # the backup deleted, or restored from
    description: str = ""  # a create's; ends with a tag (`[chain abc123]`) when the bot wrote it
    path: str = "direct"  # who sends it: direct, undo, chain, approval, room
    ref: str | None = None  # the row of the work that sends it: a delete window, a chain, a request


@dataclass(frozen=True)
class Sent:
    """How a write ended, once: its outcome, what the API gave back, and why (words for people)."""

    write: Write
    id: str
    outcome: WriteOutcome
    backup: Backup | None = None  # a create's new backup, when its answer could be read
    message: str | None = None  # the provider's words on a restore
    error: BackupApiError | None = None
    why: Words | None = None  # why not done, or why unknown

    @property
    def done(self) -> bool:
        return self.outcome is WriteOutcome.DONE

    @property
    def unknown(self) -> bool:
        return self.outcome is WriteOutcome.UNKNOWN

    @property
    def gone(self) -> bool:
        """Not done because the backup no longer exists (a delete or restore answered 404)."""
        return self.outcome is WriteOutcome.NOT_DONE and isinstance(self.error, NotFound)

    @property
    def unreadable(self) -> bool:
        return isinstance(self.error, AcceptedButUnreadable)


def classify(error: BackupApiError) -> tuple[WriteOutcome, Words]:
    """What a write's failure means: not done (the API refused it, or never got it), or unknown."""
    if isinstance(error, AcceptedButUnreadable):
        return WriteOutcome.DONE, Words(N_("its answer could not be read"))
    if isinstance(error, NotSent):
        return WriteOutcome.NOT_DONE, Words(N_("the backup API could not be reached"))
    if isinstance(error, RateLimited):
        return WriteOutcome.NOT_DONE, Words(N_("the backup API is rate-limiting the bot"))
    if isinstance(error, NotFound):
        return WriteOutcome.NOT_DONE, Words(N_("the backup no longer exists"))
    if isinstance(error, Unauthorized):
        return WriteOutcome.NOT_DONE, Words(N_("the backup API refused the bot's token"))
    if isinstance(error, BadRequest):
        return WriteOutcome.NOT_DONE, Words(N_("the backup API refused it: “{words}”"), words=error.provider_message)
    if isinstance(error, ApiTimeout):
        return WriteOutcome.UNKNOWN, Words(N_("no answer came in time"))
    if isinstance(error, UnexpectedResponse) and error.status_code is not None and 400 <= error.status_code < 500:
        return WriteOutcome.NOT_DONE, Words(N_("the backup API refused it ({status})"), status=error.status_code)
    if isinstance(error, Unavailable) and error.status_code is not None:
        return WriteOutcome.UNKNOWN, Words(N_("the backup API answered {status}"), status=error.status_code)
    if isinstance(error, Unavailable):
        return WriteOutcome.UNKNOWN, Words(N_("the connection broke before the answer came"))
    return WriteOutcome.UNKNOWN, Words(N_("its answer could not be understood"))


INTERRUPTED = Words(N_("the bot stopped while sending it"))


def audit_detail(sent: Sent, context: str) -> tuple[str, str]:
    """The audit entry's outcome and detail for a write: `context` (what path, approved by whom) and how it ended.

    The audit's words are done, denied, failed, cancelled: a write whose outcome is unknown is `failed`, and its
    detail says it may have happened.
    """
    context = context.strip()
    if sent.done:
        return "done", context + (" [answer unreadable]" if sent.unreadable else "")
    why = sent.why.english() if sent.why is not None else ""
    said = f"{type(sent.error).__name__}: {sent.error}" if sent.error is not None else ""
    if sent.unknown:
        text = f"outcome unknown, it may have happened: {why}" + (f" ({said})" if said else "")
    else:
        text = said or why
    return "failed", f"{context}; {text}" if context else text


def matches(backup: Backup, description: str) -> bool:
    """Is this the backup a create with `description` made? By its tag, if the bot gave it one; else by words."""
    tag = TAG.search(description)
    if tag:
        return backup.description.endswith(tag.group(0))
    return backup.description == description
