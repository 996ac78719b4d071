"""Who may do what: a pure policy, with no I/O.

Roles are per server and ordered: viewer (list) < operator (+ create) <
owner (+ delete, restore, and approving or denying someone else's delete or
restore under the two-person rule). Admins may do everything on every server;
only admins manage grants, the two-person rule and read the audit log. `help`
and `servers` are for anyone.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    OWNER = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: use viewer, operator or owner") from None


class Action(Enum):
    HELP = "help"
    SERVERS = "servers"
    LIST = "list"
    CREATE = "create"
    DELETE = "delete"
    RESTORE = "restore"
    GRANT = "grant"
    REVOKE = "revoke"
    AUDIT = "audit"
    ADMIN = "admin"
    APPROVALS = "approvals"
    APPROVE = "approve"
    DENY = "deny"
    CHANNELS = "channels"
    LANGUAGE = "language"
    STATUS = "status"
    DIGEST = "digest"
    POLICY = "policy"
    TOKENS = "tokens"  # pipeline tokens: made, listed and revoked by admins (from the shell)


REQUIRED_ROLE: dict[Action, Role] = {
    Action.LIST: Role.VIEWER,
    Action.CREATE: Role.OPERATOR,
    Action.DELETE: Role.OWNER,
    Action.RESTORE: Role.OWNER,
    Action.APPROVE: Role.OWNER,
    Action.DENY: Role.OWNER,
    Action.CHANNELS: Role.VIEWER,  # showing a server's channels; changing them is for admins
    Action.STATUS: Role.VIEWER,
    Action.POLICY: Role.OWNER,  # setting a server's policy or threshold; reading it is a viewer's
}
FOR_ANYONE = frozenset({Action.HELP, Action.SERVERS, Action.LANGUAGE})
ADMIN_ONLY = frozenset(
    {Action.GRANT, Action.REVOKE, Action.AUDIT, Action.ADMIN, Action.APPROVALS, Action.DIGEST, Action.TOKENS}
)


def is_allowed(action: Action, *, is_admin: bool, role: Role | None) -> bool:
    """May a person with this standing on a server do `action` there?"""
    if action in FOR_ANYONE or is_admin:
        return True
    if action in ADMIN_ONLY:
        return False
    return role is not None and role >= REQUIRED_ROLE[action]


def backup_actions(*, is_admin: bool, role: Role | None) -> list[Action]:
    """The per-backup actions (restore, delete) to offer as buttons."""
    return [a for a in (Action.RESTORE, Action.DELETE) if is_allowed(a, is_admin=is_admin, role=role)]
