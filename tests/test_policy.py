"""The whole permission table: every role (and none, and admin) against every action."""

import pytest

from bot.policy import Action, Role, backup_actions, is_allowed

EXPECTED = {
    # action: (none, viewer, operator, owner, admin)
    Action.HELP: (True, True, True, True, True),
    Action.SERVERS: (True, True, True, True, True),
    Action.LANGUAGE: (True, True, True, True, True),
    Action.LIST: (False, True, True, True, True),
    Action.CREATE: (False, False, True, True, True),
    Action.DELETE: (False, False, False, True, True),
    Action.RESTORE: (False, False, False, True, True),
    Action.GRANT: (False, False, False, False, True),
    Action.REVOKE: (False, False, False, False, True),
    Action.AUDIT: (False, False, False, False, True),
    Action.ADMIN: (False, False, False, False, True),
    Action.APPROVALS: (False, False, False, False, True),
    Action.APPROVE: (False, False, False, True, True),
    Action.DENY: (False, False, False, True, True),
    Action.CHANNELS: (False, True, True, True, True),  # showing them; changing them is checked as admin-only
    Action.STATUS: (False, True, True, True, True),
    Action.POLICY: (False, False, False, True, True),  # setting a policy or threshold
    Action.DIGEST: (False, False, False, False, True),
    Action.TOKENS: (False, False, False, False, True),
}
STANDINGS = [(False, None), (False, Role.VIEWER), (False, Role.OPERATOR), (False, Role.OWNER), (True, None)]


def test_table_covers_every_action():
    assert set(EXPECTED) == set(Action)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("standing", range(5))
def test_every_role_against_every_action(action, standing):
    is_admin, role = STANDINGS[standing]
    assert is_allowed(action, is_admin=is_admin, role=role) is EXPECTED[action][standing]


@pytest.mark.parametrize("role", list(Role))
def test_admin_with_any_role_may_do_everything(role):
    assert all(is_allowed(a, is_admin=True, role=role) for a in Action)


def test_roles_are_ordered_and_parsed():
    assert Role.VIEWER < Role.OPERATOR < Role.OWNER
    assert Role.parse(" Owner ") is Role.OWNER
    with pytest.raises(ValueError, match="viewer, operator or owner"):
        Role.parse("admin")


def test_buttons_offered_per_role():
    assert backup_actions(is_admin=False, role=None) == []
    assert backup_actions(is_admin=False, role=Role.OPERATOR) == []
    assert backup_actions(is_admin=False, role=Role.OWNER) == [Action.RESTORE, Action.DELETE]
    assert backup_actions(is_admin=True, role=None) == [Action.RESTORE, Action.DELETE]
