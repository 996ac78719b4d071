import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.parsing import SUBCOMMANDS, Command, UsageError, parse_command, parse_user
from bot.policy import Action, Role


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "?"])
def test_help(text):
    assert parse_command(text) == Command(Action.HELP)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", Command(Action.LIST)),
        ("list 12345", Command(Action.LIST, server_id=12345)),
        ("list manual", Command(Action.LIST, backup_type="manual")),
        ("list 12345 automatic", Command(Action.LIST, server_id=12345, backup_type="automatic")),
        ("list Automatic 12345", Command(Action.LIST, server_id=12345, backup_type="automatic")),
        ("create 12345", Command(Action.CREATE, server_id=12345)),
        ("delete 5003", Command(Action.DELETE, backup_id=5003)),
        ("restore 5003", Command(Action.RESTORE, backup_id=5003)),
        ("restore 5003 12346", Command(Action.RESTORE, backup_id=5003, server_id=12346)),
        ("servers", Command(Action.SERVERS)),
        ("grant <@U0ALICE|alice> 12345", Command(Action.GRANT, user_id="U0ALICE", server_id=12345, role=Role.OPERATOR)),
        ("grant U0ALICE 12345 owner", Command(Action.GRANT, user_id="U0ALICE", server_id=12345, role=Role.OWNER)),
        ("revoke <@W0BOB> 12345", Command(Action.REVOKE, user_id="W0BOB", server_id=12345)),
        ("audit", Command(Action.AUDIT, limit=20)),
        ("audit 5", Command(Action.AUDIT, limit=5)),
    ],
)
def test_commands(text, expected):
    assert parse_command(text) == expected


def test_description_is_unescaped_as_typed():
    cmd = parse_command("create 12345  Before &lt;deploy&gt; &amp; &lt;!channel&gt;  ")
    assert cmd.description == "Before <deploy> & <!channel>"


@pytest.mark.parametrize(
    ("text", "problem", "subcommand"),
    [
        ("frobnicate", "not a /backup command", "help"),
        ("list abc", "not a server ID", "list"),
        ("list 1 2", "neither a type", "list"),
        ("list manual automatic", "give the type once", "list"),
        ("create", "missing", "create"),
        ("create web-01", "not a server ID", "create"),
        ("delete", "missing", "delete"),
        ("delete 5003 5004", "unexpected `5004`", "delete"),
        ("delete -1", "not a backup ID", "delete"),
        ("restore x", "not a backup ID", "restore"),
        ("grant @alice 12345", "not as a mention", "grant"),
        ("grant alice 12345", "not a Slack user", "grant"),
        ("grant U0ALICE 12345 boss", "is not a role", "grant"),
        ("revoke U0ALICE", "missing", "revoke"),
        ("audit 0", "from 1 to 50", "audit"),
        ("audit many", "from 1 to 50", "audit"),
        ("servers please", "unexpected", "servers"),
    ],
)
def test_bad_input_says_what_was_wrong_and_what_to_type(text, problem, subcommand):
    with pytest.raises(UsageError) as caught:
        parse_command(text)
    assert problem in caught.value.problem
    assert caught.value.subcommand == subcommand
    assert caught.value.usage and caught.value.usage.startswith("/backup")


def test_overlong_description_is_refused():
    with pytest.raises(UsageError, match="at most 255"):
        parse_command("create 1 " + "x" * 256)


def test_parse_user_forms():
    assert parse_user("<@U123ABC|alice>") == "U123ABC"
    assert parse_user("<@U123ABC>") == "U123ABC"
    assert parse_user("U123ABC") == "U123ABC"
    with pytest.raises(UsageError):
        parse_user("<!channel>")


def test_problems_quote_the_token_as_typed():
    with pytest.raises(UsageError) as caught:
        parse_command("delete &lt;5&gt;")
    assert caught.value.problem.startswith("`<5>` is not a backup ID")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_any_text_is_a_command_or_a_usage_error(text):
    try:
        command = parse_command(text)
    except UsageError as exc:
        assert exc.problem and exc.subcommand
        return
    assert command.action in {syntax.action for syntax in SUBCOMMANDS.values()}
    for value in (command.server_id, command.backup_id):
        assert value is None or (type(value) is int and 0 < value < 10**18)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["delete", "restore", "list", "audit"]), st.text(min_size=1, max_size=12).filter(str.strip))
def test_an_id_is_ascii_digits_or_a_usage_error(word, token):
    token = token.split()[0]
    try:
        command = parse_command(f"{word} {token}")
    except UsageError:
        return
    if word in ("delete", "restore"):
        assert str(command.backup_id) == token.lstrip("0")
