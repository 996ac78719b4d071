"""Languages: the catalog is complete and current, every message renders in Korean with no English sentence
left, Block Kit limits hold in Korean, and each person (and the team) is spoken to in their own language."""

import dataclasses
import functools
import inspect
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from conftest import NOTIFY, LiveStack, button, text_of
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from test_views import NOW
from test_views import backup as views_backup
from test_views import conf as views_conf

from bot import i18n
from bot.backup_api import ApiTimeout, BadRequest, NotFound, NotSent, RateLimited, Unauthorized, Unavailable
from bot.i18n import Words, speaking
from bot.ops import (
    Accepted,
    ApprovalUnavailable,
    BackupNotFound,
    BadSchedule,
    ChainStarted,
    ChainStep,
    ChannelUnusable,
    ConfirmationMismatch,
    ConfirmationUnavailable,
    Decision,
    DeleteSent,
    DigestReport,
    Done,
    Freshness,
    HomeView,
    Interrupted,
    KeepTooMany,
    KeyReused,
    Listing,
    LowerKeepInSlack,
    MayHaveHappened,
    NoPolicy,
    NoRoom,
    NotPinnable,
    NotRestorable,
    NotTheRequester,
    OpsError,
    OwnRequest,
    PermissionDenied,
    PolicyView,
    RoomMade,
    RuledServer,
    SafetyBackupFailed,
    ServerAccess,
    ServerStatus,
    ServerSummary,
    SlotBudget,
    TokenNameTaken,
    TokenRefused,
    UndoUnavailable,
    WrongChannel,
)
from bot.ops.writes import Sent, Write, WriteKind, WriteOutcome
from bot.parsing import UsageError, parse_command
from bot.policy import Action, Role
from bot.retention import Keep, Prune
from bot.schedule import Schedule
from bot.slack import ids
from bot.slack.views import approvals, errors, home, messages, modals, outcomes, policies, safety, watching
from bot.slack.views.base import escape
from bot.store import (
    Alert,
    AlertKind,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    ChainState,
    ConfirmationState,
    DeleteWindow,
    Digest,
    Followed,
    PipelineRun,
    Policy,
    PolicyRun,
    RestoreChain,
    RunStatus,
    StoreUnavailable,
    WindowState,
)

ROOT = Path(__file__).parent.parent
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
FIELDS = re.compile(r"\{[a-z_]*\}")


@functools.cache
def extracted() -> dict[str, tuple]:
    """Every message marked in the code, as Babel's extractor finds it (once: the tests only read it)."""
    found = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "bot"), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(message)
        found[key[0] if isinstance(key, tuple) else key] = key
    return found


def catalog(path: Path):
    with path.open("rb") as po:
        return read_po(po, locale="ko" if path.suffix == ".po" else None)


def test_the_english_catalog_is_current_with_the_code():
    template = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog(ROOT / "bot/locale/messages.pot") if m.id}
    code = set(extracted())
    assert code - template == set(), "messages in the code missing from messages.pot: run pybabel extract (README)"
    assert template - code == set(), "messages.pot keeps messages the code no longer has: run pybabel extract"


def test_every_message_has_a_korean_translation_with_the_same_placeholders():
    ko = catalog(ROOT / "bot/locale/ko/LC_MESSAGES/messages.po")
    problems = []
    for key, message in extracted().items():
        entry = ko.get(message)
        if entry is None or entry.fuzzy or not entry.string or entry.string == ("",):
            problems.append(f"untranslated: {key!r}")
            continue
        korean = entry.string[0] if isinstance(entry.string, tuple) else entry.string
        english = message if isinstance(message, tuple) else (message,)
        if set(FIELDS.findall(korean)) != set(FIELDS.findall(english[-1])) | set(FIELDS.findall(english[0])):
            problems.append(f"placeholders differ: {key!r}")
        if not re.search(r"[가-힣]", korean) and key not in ("server {id}",):
            problems.append(f"not Korean: {key!r}")
    assert problems == []


# --- every message builder, with sample data -------------------------------------------------


def backup(n=1, **changes):
    """test_views' sample backup, with words that are not English (a description is the writer's own)."""
    return views_backup(n, **{"description": "배포 전", "server_name": "web-01", **changes})


def conf(action="delete", **changes):
    values = {
        "server_name": "web-01",
        "target_server_name": "web-01",
        "used_by": "U2",
        "newer_count": 3,
        "newest_id": 5033,
        "newest_at": (NOW - timedelta(hours=2)).isoformat(),
        "target_manual_count": 10,
    }
    return views_conf(action, **{**values, **changes})


def request(state=ApprovalState.PENDING, **changes):
    values = dict(
        id="req",
        action="restore",
        backup_id=5001,
        server_id=12345,
        server_name="web-01",
        target_server_id=12346,
        target_server_name="db-01",
        backup_created_at=(NOW - timedelta(days=1)).isoformat(),
        backup_type="manual",
        backup_description="배포 전",
        requested_by="U1",
        reason="배포가 잘못됨",
        origin_channel="C1",
        response_url=None,
        card_channel="C2",
        card_ts="1.2",
        created_at=NOW.isoformat(),
        expires_at=(NOW + timedelta(minutes=30)).timestamp(),
        state=state,
        decided_by="U2" if state is not ApprovalState.PENDING else None,
        decided_at=None,
        detail=None,
        safety=True,
    )
    return ApprovalRequest(**{**values, **changes})


def a_sent(kind, outcome=WriteOutcome.DONE, *, why=None, error=None, message=None):
    """A write as `send_write` returns it, for rendering."""
    write = Write(kind, 12345, None if kind is WriteKind.CREATE else 5001)
    return Sent(write, "w1", outcome, message=message, error=error, why=why)


def maybe(kind):
    return a_sent(kind, WriteOutcome.UNKNOWN, why=Words("no answer came in time"), error=ApiTimeout("timeout"))


def every_message() -> list[tuple[str, dict]]:
    """(name, message or view) for every builder the bot has, in the current language."""
    chain = RestoreChain(
        "c1", 5001, 12345, "web-01", 12345, "web-01", "U1", "U2", "C1", None, 5040, ChainState.WAITING, "", 0.0
    )
    window = DeleteWindow(
        "w1", 5001, 12345, "web-01", "manual", "U1", None, "C1", None, NOW.timestamp() + 30, WindowState.WAITING, ""
    )
    started = ChainStarted(chain, backup(40))
    followed = Followed(5040, 12345, "U1", "C1", None, "", NOW, "following")
    piped = Followed(5040, 12345, "token:deploy-prod", None, None, "배포 전 [pipeline 0123456789ab]", NOW, "following")
    why = Words("the backup no longer exists")
    gone = a_sent(WriteKind.DELETE, WriteOutcome.NOT_DONE, why=why, error=NotFound("gone"))
    refused = a_sent(
        WriteKind.DELETE, WriteOutcome.NOT_DONE, why=Words("the backup API could not be reached"), error=NotSent("x")
    )
    listing = Listing([backup(n) for n in range(1, 30)], None, None, True, {})
    entry = AuditEntry(1, NOW.isoformat(), "U1", "delete", 12345, 5001, "done", "", "slack")
    summary = ServerSummary(12345, "web-01", "owner", True, backup(1), 1, 10, True)
    auto = backup(2, kind="automatic", status="in_progress")
    built = [
        ("help admin", messages.help_message(True)),
        ("help viewer", messages.help_message(False, Role.VIEWER)),
        ("listing", messages.listing_message(listing, NOW, offset=5)),
        ("listing empty", messages.listing_message(Listing([], None, "manual", False, {}), NOW)),
        ("listing one server empty", messages.listing_message(Listing([], 12345, None, False, {}), NOW)),
        ("servers", messages.servers_message([ServerAccess(12345, "web-01", "owner", True)])),
        ("servers none", messages.servers_message([])),
        ("audit", messages.audit_message([entry, entry])),
        ("audit empty", messages.audit_message([])),
        ("created", messages.created_message(backup(0, status="in_progress"), NOW)),
        ("modal slow", messages.modal_not_opened_message("expired_trigger_id")),
        ("modal refused", messages.modal_not_opened_message("invalid_view")),
        ("accepted", messages.accepted_message(Accepted(12345, "배포 전", "x"))),
        ("announce accepted", messages.announce_accepted("U1", Accepted(12345, "배포 전", "x"))),
        ("finished", messages.finished_message(backup(1), NOW)),
        ("finished failed", messages.finished_message(backup(1, status="failed"), NOW)),
        ("ended", messages.ended_message(5040, why)),
        ("delete confirmation", messages.delete_confirmation_message(conf())),
        ("delete confirmation window", messages.delete_confirmation_message(conf(), 30)),
        ("delete confirmation ruled", messages.delete_confirmation_message(conf(), 30, ruled=True)),
        ("restore confirmation", messages.restore_confirmation_message(conf("restore"), NOW)),
        ("restore confirmation without", messages.restore_confirmation_message(conf("restore", safety=False), NOW)),
        ("restore confirmation newest", messages.restore_confirmation_message(conf("restore", newer_count=0), NOW)),
        ("deleted", messages.deleted_message(Done(conf()))),
        ("restore started", messages.restore_started_message(Done(conf("restore")))),
        ("cancelled delete", messages.cancelled_message(conf())),
        ("cancelled restore", messages.cancelled_message(conf("restore"))),
        ("announce created", messages.announce_created("U1", backup(1))),
        ("announce deleted", messages.announce_deleted("U1", conf(), "U2")),
        ("announce restore", messages.announce_restore("U1", request(), "U2")),
        ("announce finished", messages.announce_finished(followed, backup(1), 10)),
        ("announce finished failed", messages.announce_finished(followed, backup(1, status="failed"), 9)),
        ("announce automatic failed", messages.announce_automatic_failed(backup(1, status="failed"), NOW)),
        ("listing automatic", messages.listing_message(Listing([auto], 12345, "automatic", True, {}), NOW)),
        ("announce ended", messages.announce_ended(followed, why)),
        ("granted", messages.granted_message("U1", 12345, "owner")),
        ("revoked", messages.revoked_message("U1", 12345, True)),
        ("not revoked", messages.revoked_message("U1", 12345, False)),
        ("modal restore", modals.restore_modal(conf("restore"), "{}")),
        ("modal create", modals.create_modal(12345, "web-01")),
        ("awaiting", approvals.awaiting_message(request())),
        ("card", approvals.approval_card(request())),
        ("home", home.home_view(HomeView("U1", True, [summary], [request()], [entry], "503"), NOW, "알림")),
        ("home empty", home.home_view(HomeView("U1", False, [], [], [], None), NOW)),
        ("scheduled", safety.delete_scheduled_message(window, NOW)),
        ("undone", safety.undone_message(window)),
        ("delete sent", safety.delete_sent_message(DeleteSent(window, a_sent(WriteKind.DELETE)))),
        ("delete gone", safety.delete_sent_message(DeleteSent(window, gone))),
        ("delete not sent", safety.delete_sent_message(DeleteSent(window, refused))),
        ("delete maybe", safety.delete_sent_message(DeleteSent(window, maybe(WriteKind.DELETE)))),
        ("chain started", safety.chain_started_message(started)),
        ("chain restored", safety.chain_step_message(ChainStep(chain, a_sent(WriteKind.RESTORE)))),
        ("chain maybe", safety.chain_step_message(ChainStep(chain, maybe(WriteKind.RESTORE)))),
        ("chain found", safety.chain_step_message(ChainStep(chain, found=backup(40)))),
        ("chain stopped", safety.chain_step_message(ChainStep(chain, why=why, offer_without=True))),
        ("announce chain started", safety.announce_chain_started(started)),
        ("announce chain restored", safety.announce_chain_step(ChainStep(chain, a_sent(WriteKind.RESTORE)))),
        ("announce chain maybe", safety.announce_chain_step(ChainStep(chain, maybe(WriteKind.RESTORE)))),
        ("announce chain found", safety.announce_chain_step(ChainStep(chain, found=backup(40)))),
        ("announce chain stopped", safety.announce_chain_step(ChainStep(chain, why=why))),
        ("make room", safety.make_room_confirmation_message(conf(description="새 백업"))),
        (
            "room made",
            safety.room_made_message(RoomMade(conf(), None, BadRequest("limit")), errors.error_message(refused.error)),
        ),
        ("unknown create", {"text": outcomes.unknown_text(maybe(WriteKind.CREATE))}),
        ("not done create", {"text": outcomes.not_done_text(a_sent(WriteKind.CREATE, WriteOutcome.NOT_DONE, why=why))}),
        (
            "not done restore",
            {"text": outcomes.not_done_text(a_sent(WriteKind.RESTORE, WriteOutcome.NOT_DONE, why=why))},
        ),
        *(
            (f"announce unknown {kind}", outcomes.announce_unknown("U1", maybe(kind), "*web-01* (12345)", approver))
            for kind in WriteKind
            for approver in (None, "U2")
        ),
        ("interrupted", errors.interrupted_message()),
        *((f"announce run {name}", messages.announce_run(run)) for name, run in pipeline_runs().items()),
        (
            "announce run shell",
            messages.announce_run(dataclasses.replace(pipeline_runs()["in_progress"], actor="cli:kim")),
        ),
        ("pipeline finished", messages.announce_pipeline_finished(piped, backup(1), 10, NOW + timedelta(minutes=4))),
        ("pipeline finished long", messages.announce_pipeline_finished(piped, backup(1), 3, NOW + timedelta(hours=2))),
        ("pipeline ended", messages.announce_pipeline_ended(piped, why)),
    ]
    for on, changed in ((True, True), (True, False), (False, True), (False, False)):
        built.append((f"approvals {on} {changed}", messages.approvals_set_message(12345, on, changed)))
    for changed in ((None), ("C1", True, True), ("C1", False, True), ("C1", True, False), ("C1", False, False)):
        built.append((f"channels {changed}", messages.channels_message(12345, ["C1"], changed)))
    built.append(("channels none", messages.channels_message(12345, [])))
    for language in ("en", "ko"):
        for changed in (None, True, False):
            built.append((f"language {language} {changed}", messages.language_message(language, changed)))
    written = {
        ApprovalState.DONE: a_sent(WriteKind.RESTORE, message="Restore started."),
        ApprovalState.FAILED: refused,
        ApprovalState.UNKNOWN: maybe(WriteKind.RESTORE),
    }
    for state in ApprovalState:
        if state is not ApprovalState.PENDING:
            decision = Decision(request(state), sent=written.get(state))
            built.append((f"card {state}", approvals.decided_card(decision)))
            built.append((f"reply {state}", approvals.decided_reply(decision)))
    handed = Decision(request(ApprovalState.DONE), handed_on=True)
    built.append(("card handed on", approvals.decided_card(handed)))
    chained = Decision(request(ApprovalState.DONE), chain=started)
    built.append(("card chained", approvals.decided_card(chained)))
    for error in every_error(chain, window):
        built.append((f"error {type(error).__name__}", errors.error_message(error)))
    for state in ConfirmationState:
        built.append((f"confirmation {state}", {"text": errors.confirmation_unavailable_text(conf(state=state))}))
    for state in WindowState:
        ended = dataclasses.replace(window, state=state, decided_by="U2")
        built.append((f"undo {state}", {"text": safety.undo_unavailable_text(ended)}))
    for text in ("frobnicate", "list web", "list 1 2 3", "create 1 " + "x" * 300, "grant @bob 1", "grant U1 1 boss"):
        with pytest.raises(UsageError) as caught:
            parse_command(text)
        built.append((f"usage {text[:20]}", errors.usage_error_message(caught.value)))
    for text in (
        "audit 99",
        "audit color red",
        "audit server",
        "audit outcome maybe",
        "channels 1 add x",
        "language fr",
    ):
        with pytest.raises(UsageError) as caught:
            parse_command(text)
        built.append((f"usage {text}", errors.usage_error_message(caught.value)))
    built += watching_messages()
    built += policy_messages()
    return built


def policy_messages() -> list[tuple[str, dict]]:
    """A policy in every state, its changes, pins, the form's pages, and each policy command's bad input."""
    set_at = (NOW - timedelta(days=3)).timestamp()
    policy = Policy(
        12345, "daily", (), "02:30", 24, "Europe/Berlin", 5, 0, 0, 0, "active", None, "", "U1", set_at, "U1",
        set_at, None,
    )  # fmt: skip
    weekly = dataclasses.replace(policy, cadence="weekly", days=(0, 3), keep_last=0, keep_daily=3, keep_weekly=2)
    hourly = dataclasses.replace(policy, cadence="hourly", every_hours=6, at_time="01:00", zone="Asia/Seoul")
    paused = dataclasses.replace(policy, state="paused", paused_until=NOW.timestamp() + 3600, pause_reason="배포 동결")
    off = dataclasses.replace(policy, state="off")
    run = PolicyRun("0badc0de", 12345, NOW.timestamp(), "scheduled", "completed", 5040, None, None, None, "", (5001,))
    own = tuple(backup(n, description=f"Scheduled backup [policy r0badc0d{n}]") for n in range(1, 4))
    budget = SlotBudget(2, 3)
    full = PolicyView(
        12345, "web-01", policy, [NOW + timedelta(days=d) for d in range(1, 6)], run, own, budget,
        Prune([3, 2], [1], [4]), frozenset({7}),
    )  # fmt: skip
    bare = PolicyView(12346, None, None, [])
    built = [
        ("policy", policies.policy_message(full)),
        ("policy none", policies.policy_message(bare)),
        ("policy saved", policies.policy_saved_message(dataclasses.replace(full, policy=weekly))),
        ("policy nothing to prune", policies.policy_message(dataclasses.replace(full, prune=Prune([3], [], [])))),
        (
            "policies",
            policies.policies_message(
                [
                    full,
                    dataclasses.replace(full, policy=paused),
                    dataclasses.replace(full, policy=hourly, last_run=None),
                ]
            ),
        ),
        ("policies none", policies.policies_message([])),
        ("paused", policies.state_message(paused)),
        ("resumed", policies.resumed_message(policy)),
        ("off", policies.state_message(off)),
        ("run", policies.run_started_message(dataclasses.replace(run, state="running"))),
        ("run unconfirmed", policies.run_started_message(dataclasses.replace(run, state="creating"))),
        ("run failed", policies.run_started_message(dataclasses.replace(run, state="failed", detail="400"))),
        ("pinned", policies.pinned_message(backup(7), True, True)),
        ("unpinned", policies.pinned_message(backup(7), False, False)),
        ("announce policy", policies.announce_policy("U1", full)),
        ("announce paused", policies.announce_paused("U1", paused)),
        ("announce resumed", policies.announce_resumed("U1", policy)),
        ("announce resumed on time", policies.announce_resumed(None, policy)),
        ("announce off", policies.announce_off("U1", off)),
        ("form", policies.policy_form(12345, "web-01", hourly, "UTC", policies.form_metadata(12345, "C1", None))),
        ("form new", policies.policy_form(12345, None, None, "Asia/Seoul", "{}")),
        ("preview", policies.policy_preview(dataclasses.replace(full, saved=False), "{}")),
        ("form notice", policies.form_notice(policies.when_words(NOW, "Asia/Seoul"))),
        ("run words", {"text": policies.run_words(dataclasses.replace(run, state="missed"), "UTC")}),
        ("typed", {"text": policies.typed_schedule(policy, "UTC") + policies.typed_keep(None)}),
    ]
    asked = dataclasses.replace(
        request(), action="policy", backup_id=0, reason="", payload='{"before": [4, 0, 0, 0], "after": [2, 0, 0, 0]}'
    )
    approved = dataclasses.replace(asked, state=ApprovalState.DONE, decided_by="U2")
    built += [
        ("policy request waiting", approvals.awaiting_message(asked)),
        ("policy request card", approvals.approval_card(asked)),
        ("policy request approved", approvals.decided_card(Decision(approved))),
        ("policy request reply", approvals.decided_reply(Decision(approved))),
    ]
    for text in (
        "policy 12345 daily 3am",
        "policy 12345 every 5h",
        "policy 12345 keep last 0",
        "policy 12345 keep last 50",
        "policy 12345 keep daily 7 weekly 4",
        "policy 12345 keep weekly",
        "policy 12345 keep yearly 1",
        "policy 12345 keep last 2 daily 1",
        "policy 12345 keep",
        "policy 12345 daily 02:00 Mars/Base",
        "policy 12345 pause for 30d",
        "policy 12345 pause until 24-12-2026",
        "policy 12345 sometimes",
        "pin automatic",
    ):
        with pytest.raises(UsageError) as caught:
            parse_command(text)
        built.append((f"usage {text}", errors.usage_error_message(caught.value)))
    return built


def alerts() -> list[Alert]:
    at = (NOW - timedelta(hours=30)).timestamp()
    newest = {"id": 5001, "type": "automatic", "at": at, "hours": 26}
    rows = [
        (AlertKind.STALE, None, newest, {}),
        (AlertKind.STALE, None, {"hours": 26}, {"id": 5040, "type": "manual", "at": NOW.timestamp()}),
        (AlertKind.FAILED, 5033, {"id": 5033, "type": "manual", "at": at, "status": "failed", "asked_by": "U1"}, {}),
        (
            AlertKind.FAILED,
            5037,
            {"id": 5037, "type": "manual", "at": at, "status": "failed", "asked_by": "token:deploy-prod"},
            {},
        ),
        (
            AlertKind.FAILED,
            5034,
            {"id": 5034, "type": "automatic", "at": at, "status": "error"},
            {"id": 5040, "type": "manual", "at": NOW.timestamp()},
        ),
        (AlertKind.STUCK, 5035, {"id": 5035, "type": "manual", "at": at}, {"id": 5035, "status": "completed"}),
        (AlertKind.STUCK, 5036, {"id": 5036, "type": "manual", "at": at}, {"gone": True}),
        (AlertKind.RUN_FAILED, 5041, {"run": "0badc0de", "id": 5041, "status": "failed"}, {}),
        (
            AlertKind.RUN_FAILED,
            None,
            {"run": "0badc0de", "why": "the bot stopped before the backup API acted on it"},
            {},
        ),
        (AlertKind.RUN_SKIPPED, None, {"count": 10, "oldest": [5001, 5002, 5003], "run": "0badc0de"}, {}),
        (AlertKind.RUN_MISSED, None, {"from": at, "to": at, "count": 1}, {"id": 5040, "type": "manual", "at": at}),
        (AlertKind.RUN_MISSED, None, {"from": at - 86400, "to": at, "count": 2}, {}),
    ]
    return [
        Alert(
            f"a{n}",
            12345,
            kind,
            subject,
            "recovered" if healed else "open",
            facts,
            at,
            at,
            NOW.timestamp() if healed else None,
            healed,
        )
        for n, (kind, subject, facts, healed) in enumerate(rows)
    ]


def watching_messages() -> list[tuple[str, dict]]:
    statuses = [
        ServerStatus(
            12345, "web-01", Freshness.STALE, 26, backup(1), 10, [backup(2, status="in_progress")], alerts()[:1], NOW
        ),
        ServerStatus(12346, "db-01", Freshness.DUE, 12, backup(3), 3, [], []),
        ServerStatus(12347, None, Freshness.FRESH, 26, None, 0, [], []),
    ]
    digest = Digest("C1", "weekly", (0, 3), "09:00", "Asia/Seoul", "U1", NOW.timestamp(), None)
    report = DigestReport(digest, NOW, NOW - timedelta(days=7), True, statuses, alerts(), [backup(4, kind="automatic")])
    quiet = DigestReport(dataclasses.replace(digest, cadence="daily"), NOW, None, False, statuses, [], [])
    built = [
        ("status", watching.status_message(statuses, NOW)),
        ("status none", watching.status_message([], NOW)),
        ("digest", watching.digest_message(report, NOW)),
        ("digest quiet", watching.digest_message(quiet, NOW)),
        ("digest set", watching.digest_set_message("C1", watching.schedule_words("daily", (), "09:00", "UTC"), True)),
        ("digest off", watching.digest_set_message("C1", None, True)),
        ("digest none", watching.digest_set_message("C1", None, False)),
        ("digests", watching.digests_message([digest])),
        ("digests none", watching.digests_message([])),
        ("digest hello", watching.digest_hello("U1", Schedule("daily", NOW.time(), "UTC"))),
        ("stale set", watching.stale_set_message(12345, 12, None, 26)),
        ("stale set again", watching.stale_set_message(12345, 12, 30, 26)),
    ]
    for alert in alerts():
        built.append(
            (
                f"alert {alert.kind} {alert.id}",
                watching.alert_card(dataclasses.replace(alert, state="open"), "web-01", NOW),
            )
        )
        built.append((f"reminder {alert.id}", watching.alert_reminder(alert, "web-01", NOW)))
        built.append((f"recovered {alert.id}", watching.recovered_card(alert, "web-01", NOW)))
    return built


def pipeline_runs() -> dict[str, PipelineRun]:
    """A pipeline's run in each state the team hears of (bot/ops/pipelines.py)."""
    run = PipelineRun(
        "0123456789ab", "token:deploy-prod", 12345, "web-01", "k1", "h", "배포 전", RunStatus.IN_PROGRESS, 5040,
        None, "", None, NOW.isoformat(), NOW.timestamp(), None,
    )  # fmt: skip
    oldest = {"id": 5024, "created_at": (NOW - timedelta(days=9)).isoformat(), "description": "스키마 변경 전"}
    return {
        "in_progress": run,
        "unknown": dataclasses.replace(run, status=RunStatus.UNKNOWN, backup_id=None, detail="no answer came in time"),
        "no room": dataclasses.replace(run, status=RunStatus.FAILED, backup_id=None, refusal="no_room", oldest=oldest),
        "no room unknown oldest": dataclasses.replace(run, status=RunStatus.FAILED, backup_id=None, refusal="no_room"),
        "refused": dataclasses.replace(run, status=RunStatus.FAILED, backup_id=None, refusal="api", detail="403"),
        "ended failed": dataclasses.replace(run, status=RunStatus.FAILED, detail="backup #5040 ended failed"),
    }


def every_error(chain: RestoreChain, window: DeleteWindow) -> list[Exception]:
    full = NoRoom(12345, 10, backup(9), description="", may_make_room=True, ruled=False, provider_message="limit")
    return [
        PermissionDenied(Action.DELETE, 12345, "owner", Role.VIEWER),
        PermissionDenied(Action.GRANT, None, "admin"),
        PermissionDenied(Action.LANGUAGE, None, "viewer"),
        BackupNotFound(5001),
        BackupNotFound(5001, gone=True),
        NotRestorable(backup(1, status="failed")),
        ConfirmationUnavailable(None),
        ConfirmationMismatch(conf("restore"), "db"),
        Unauthorized("401"),
        BadRequest("limit"),
        WrongChannel(12345, ["C1"]),
        OwnRequest(request()),
        NotTheRequester(request()),
        ApprovalUnavailable(None),
        ApprovalUnavailable(request(ApprovalState.DONE)),
        ApprovalUnavailable(request(ApprovalState.DENIED)),
        ApprovalUnavailable(request(ApprovalState.WITHDRAWN)),
        ApprovalUnavailable(request(), expired=True),
        full,
        NoRoom(12345, 10, backup(9), description="", may_make_room=False, ruled=False, provider_message="limit"),
        NoRoom(12345, 10, backup(9), description="", may_make_room=True, ruled=True, provider_message="limit"),
        SafetyBackupFailed(chain, Words("the backup no longer exists")),
        UndoUnavailable(None),
        UndoUnavailable(window),
        RuledServer(12345),
        Interrupted(Words("the bot stopped before sending it, so nothing was done")),
        *(MayHaveHappened(maybe(kind)) for kind in WriteKind),
        NotSent("refused"),
        BadSchedule("stale", "0"),
        ChannelUnusable(12345, "C0TYPO", Words("I am not in that channel: invite me there first")),
        StoreUnavailable("locked"),
        RateLimited("429", 3),
        ApiTimeout("timeout"),
        Unavailable("503"),
        TokenRefused(None),
        TokenRefused("deploy-prod", revoked=True),
        TokenRefused("deploy-prod", server_id=12347),
        TokenNameTaken("deploy-prod"),
        KeyReused("0123456789ab"),
        KeepTooMany(12345, Keep(last=7), 4, 2, 3),
        NoPolicy(12345),
        NoPolicy(12345, off=True),
        LowerKeepInSlack(12345),
        NotPinnable(backup(4, kind="automatic")),
        BadSchedule("pause", "2027-01-01T00:00"),
        RuntimeError("internal"),
    ]


def all_subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *all_subclasses(direct)}}


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_refusal_has_words_of_its_own_in_every_language(language):
    """A new OpsError without its own branch in views/errors.py would fall back to its English message."""
    chain = RestoreChain("c1", 1, 1, "a", 1, "a", "U1", None, None, None, 5, ChainState.WAITING, "", 0.0)
    window = DeleteWindow("w1", 1, 1, "a", "manual", "U1", None, None, None, 0.0, WindowState.WAITING, "")
    with speaking(language, language):
        samples = [e for e in every_error(chain, window) if isinstance(e, OpsError)]
        assert {type(e) for e in samples} == all_subclasses(OpsError), "every refusal has a sample here"
        fallbacks = [type(e).__name__ for e in samples if errors.error_text(e) == f":warning: {escape(e)}"]
    assert fallbacks == []


def test_every_public_builder_of_the_views_is_rendered_here():
    """every_message() renders each public function of the views' modules (directly or through another), so a
    new builder is checked in Korean without anyone remembering to add it."""
    builders = {
        f"{module.__name__}.{name}": function.__code__
        for module in (approvals, errors, home, messages, modals, outcomes, policies, safety, watching)
        for name, function in vars(module).items()
        if inspect.isfunction(function) and function.__module__ == module.__name__ and not name.startswith("_")
    }
    called = set()

    def profile(frame, event, _arg):
        if event == "call":
            called.add(frame.f_code)

    sys.setprofile(profile)
    try:
        every_message()
    finally:
        sys.setprofile(None)
    assert sorted(name for name, code in builders.items() if code not in called) == []


def texts_of(item) -> list[str]:
    """Every text a person can read in a message or view: mrkdwn, plain text, buttons, dialogs, labels."""
    found = []
    if isinstance(item, dict):
        for key, value in item.items():
            if key in (
                "text",
                "title",
                "label",
                "hint",
                "placeholder",
                "confirm",
                "deny",
                "description",
                "submit",
                "close",
            ):
                if isinstance(value, str):
                    found.append(value)
                else:
                    found.extend(texts_of(value))
            elif key not in ("value", "action_id", "block_id", "callback_id", "private_metadata", "url", "style"):
                found.extend(texts_of(value))
    elif isinstance(item, list):
        for value in item:
            found.extend(texts_of(value))
    return found


# Words that stay English in Korean on purpose: command and role words, product and setting names.
KEPT = {
    "viewer",
    "operator",
    "owner",
    "VPS",
    "org",
    "Slack",
    "API",
    "ID",
    "GB",
    "MB",
    "UTC",
    "en",
    "ko",
    "on",
    "off",
    "add",
    "remove",
    "English",
    "web",
    "db",
    "N",
    "U",
    "C",
    "server",
    "user",
    "action",
    "outcome",
}
# Renderings that list words to type, as bot/parsing.py spells them (`outcome done`…).
TYPED_WORDS = {"usage audit outcome maybe"}
NOT_PROSE = re.compile(r"<[^>]*>|`[^`]*`|“[^”]*”|:[a-z_]+:|[A-Z_]{4,}|manifest\.yml|VPS\.org|#\w+")
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}\b(?:[ ,]+\b[A-Za-z]{2,}\b)+")


def english_left(text: str) -> list[str]:
    prose = NOT_PROSE.sub(" ", text)
    runs = [m.group(0) for m in ENGLISH_RUN.finditer(prose)]
    return [r for r in runs if not set(re.findall(r"[A-Za-z]+", r)) <= KEPT]


def test_every_message_renders_in_korean_with_no_english_sentence_left():
    with speaking("ko", "ko"):
        rendered = every_message()
    assert len(rendered) > 100
    leftovers = {
        name: english_left(text) for name, item in rendered for text in texts_of(item) if name not in TYPED_WORDS
    }
    assert {name: runs for name, runs in leftovers.items() if runs} == {}


def test_the_check_for_english_would_find_it():
    with speaking("en", "en"):
        rendered = every_message()
    assert sum(bool(english_left(t)) for _name, item in rendered for t in texts_of(item)) > 100


# --- words the code puts into sentences: statuses, states, types ---------------------------------

# Every status, state and type word the code shows, as the API and the store spell them.
STATE_WORDS = re.compile(
    r"(?<![A-Za-z])(?:manual|automatic|completed|in[ _]progress|failed|pending|queued|creating|running|approved"
    r"|done|denied|withdrawn|expired|used|cancelled|waiting|sending|gone|unrestorable|undone|rejected|deleted)"
    r"(?![A-Za-z])",  # not \b: Hangul counts as a word character, and "approved입니다" must be found
    re.IGNORECASE,
)


def english_state_words(text: str) -> list[str]:
    """English status, state or type words in a Korean text, outside what is typed (code spans) or quoted."""
    return STATE_WORDS.findall(NOT_PROSE.sub(" ", text))


def state_words_in(rendered) -> dict[str, list[str]]:
    found = {}
    for name, item in rendered:
        words = [w for text in texts_of(item) for w in english_state_words(text)]
        if words and name not in TYPED_WORDS:
            found[name] = words
    return found


def test_no_korean_rendering_has_an_english_status_state_or_type_word():
    with speaking("ko", "ko"):
        rendered = every_message()
    assert state_words_in(rendered) == {}


def test_the_check_for_english_status_words_fails_when_the_code_shows_them_raw(monkeypatch):
    """The tables turned off, each word is shown as the API or the store spells it: the check must see it."""
    from bot.slack.views import base

    tables = (i18n.BACKUP_STATUS, i18n.BACKUP_TYPE, base.REQUEST_STATE, base.CONFIRMATION_STATE, base.WINDOW_STATE)
    for table in (*tables, base.AUDIT_OUTCOME):
        for key in list(table):
            monkeypatch.delitem(table, key)
    with speaking("ko", "ko"):
        found = state_words_in(every_message())
    assert {"listing", "delete confirmation", "announce deleted", "card denied", "audit", "undo failed"} <= set(found)
    assert "denied" in found["card denied"] and "manual" in found["listing"]
    assert english_state_words("백업 *#5001*의 상태는 approved입니다") == ["approved"]
    assert english_state_words("`/backup list 12345 manual`로 확인해 주세요") == []


# --- particles after numbers and Korean words --------------------------------------------------

FALLBACK = re.compile(r"(?:이\(가\)|가\(이\)|을\(를\)|를\(을\)|은\(는\)|는\(은\)|와\(과\)|과\(와\)|\(으\)로|\(이\))")


def resolvable_fallbacks(text: str) -> list[str]:
    """Fallback particles (이(가), (으)로…) right after a digit or a Hangul syllable, mrkdwn markers skipped:
    the code knows how that word is read, so the particle should have been chosen."""
    found = []
    for match in FALLBACK.finditer(text):
        before = text[: match.start()].rstrip("*_~`")
        if before and (before[-1].isdigit() or "가" <= before[-1] <= "힣"):
            found.append(text[max(0, match.start() - 6) : match.end()])
    return found


def fallbacks_in(rendered) -> dict[str, list[str]]:
    found = {}
    for name, item in rendered:
        hits = [hit for text in texts_of(item) for hit in resolvable_fallbacks(text)]
        if hits:
            found[name] = hits
    return found


def test_no_korean_rendering_leaves_a_fallback_particle_the_code_could_choose():
    with speaking("ko", "ko"):
        rendered = every_message()
    assert fallbacks_in(rendered) == {}


def test_the_check_for_fallback_particles_fails_when_they_are_not_chosen(monkeypatch):
    """With the choosing turned off, the catalog's fallbacks after IDs come through: the check must see them."""
    monkeypatch.setattr(i18n.KoreanText, "format", str.format)
    with speaking("ko", "ko"):
        found = fallbacks_in(every_message())
    assert len(found) > 30
    assert {"finished", "delete confirmation", "deleted", "scheduled"} <= set(found)
    assert resolvable_fallbacks("백업 *#5023*을(를) 삭제했습니다") == ["#5023*을(를)"]
    assert resolvable_fallbacks("`/backup delete 5030`(으)로") == [" 5030`(으)로"]
    assert resolvable_fallbacks("관리자만: 역할 부여은(는)") == [" 역할 부여은(는)"]
    assert resolvable_fallbacks("`frobnicate`은(는)") == []


@pytest.mark.parametrize(
    ("before", "particles"),
    [
        ("#5020", "이 을 은 과 으로"),  # 이십: 0 reads as 십 (or 영), a consonant
        ("#5021", "이 을 은 과 로"),  # 일: ㄹ takes 로
        ("#5022", "가 를 는 와 로"),  # 이
        ("#5023", "이 을 은 과 으로"),  # 삼
        ("#5024", "가 를 는 와 로"),  # 사
        ("#5025", "가 를 는 와 로"),  # 오
        ("#5026", "이 을 은 과 으로"),  # 육
        ("#5027", "이 을 은 과 로"),  # 칠
        ("#5028", "이 을 은 과 로"),  # 팔
        ("#5029", "가 를 는 와 로"),  # 구
        ("*#5023*", "이 을 은 과 으로"),  # mrkdwn markers are skipped
        ("`/backup delete 5027`", "이 을 은 과 로"),
        ("백업", "이 을 은 과 으로"),
        ("서버", "가 를 는 와 로"),
        ("서울", "이 을 은 과 로"),
        ("*web-01* (12345)", "이 을 은 과 로"),  # the parenthesis adds to web-01: 일
        ("백업 *#5022*(수동, 2026년 12월 2일 생성)", "가 를 는 와 로"),
        ("*db-prod* (12345)", "이(가) 을(를) 은(는) 과(와) (으)로"),  # a Latin name: how it is read is unknown
        ("“배포 전”", "이(가) 을(를) 은(는) 과(와) (으)로"),
    ],
)
def test_korean_particles_fit_the_word_before_them(before, particles):
    chosen = [i18n.particle_after(before, fallback) for fallback in ("이(가)", "을(를)", "은(는)", "과(와)", "(으)로")]
    assert " ".join(chosen) == particles


def test_korean_text_chooses_particles_in_the_catalogs_words_never_in_a_value():
    with speaking("ko", "ko"):
        text = i18n._("safety backup #{id} ended {status}")
        assert isinstance(text, i18n.KoreanText)
        assert text.format(id=5022, status="실패") == "복원 전 백업 #5022가 실패 상태로 끝났습니다"
        template = i18n.KoreanText("{a}을(를) {b}(으)로 {0}은(는)")
        assert template.format(7, a="서버 *12346*", b="설명 “v2을(를)”") == "서버 *12346*을 설명 “v2을(를)”(으)로 7은"
        assert str(Words("safety backup #{id} ended {status}", id=5030, status="failed")) == (
            "복원 전 백업 #5030이 실패 상태로 끝났습니다"
        )
    with speaking("en", "en"):
        assert type(i18n._("safety backup #{id} ended {status}")) is str
        assert Words("safety backup #{id} ended {status}", id=5030, status="failed").english() == (
            "safety backup #5030 ended failed"
        )


def valid(item: dict) -> None:
    """Slack's own models check lengths in characters, as Slack counts them; to_dict() raises on a violation."""
    if item.get("type") in ("modal", "home"):
        View(**item).to_dict()
        return
    if "blocks" in item:
        assert len(item["blocks"]) <= 50
        for block in Block.parse_all(item["blocks"]):
            block.to_dict()
    assert len(item.get("text", "")) <= 3000


def test_block_kit_limits_hold_in_korean_with_long_names():
    long = "가" * 300
    with speaking("ko", "ko"):
        items = every_message()
        items += [
            ("long delete", messages.delete_confirmation_message(conf(server_name=long), 30)),
            ("long restore", messages.restore_confirmation_message(conf("restore", target_server_name=long), NOW)),
            ("long modal", modals.restore_modal(conf("restore", target_server_name=long), "{}")),
            ("long make room", safety.make_room_confirmation_message(conf(server_name=long, description=long))),
        ]
    for _name, item in items:
        valid(item)


def test_korean_dates_and_relative_times():
    with speaking("ko", "ko"):
        assert i18n.date_words(datetime(2026, 11, 27, 15, 51, tzinfo=UTC)) == "2026년 11월 27일 15:51 UTC"
        assert messages.ago(NOW - timedelta(hours=2), NOW) == "2시간 전"
        assert messages.ago(NOW + timedelta(days=3), NOW) == "3일 후"
    with speaking("en", "en"):
        assert messages.ago(NOW - timedelta(hours=1), NOW) == "1 hour ago"


# --- through signed requests ----------------------------------------------------------------


@pytest.fixture
def bilingual(tmp_path, sim):
    live = LiveStack(tmp_path / "langs.db", sim)
    yield live
    live.close()


def test_a_person_who_chose_korean_gets_korean_and_another_still_english(bilingual):
    stack = bilingual
    chosen, _ = stack.ask("language ko", user="U0KIM")
    assert "이제부터 한국어로 대화하겠습니다" in text_of(chosen)
    assert "지금은 한국어로 대화하고 있습니다" in text_of(stack.ask("language", user="U0KIM")[0])
    for user in ("U0KIM", "U0SMITH"):
        stack.grant(user, 12345, "owner")
    korean, _ = stack.ask("delete 5023", user="U0KIM")
    english, _ = stack.ask("delete 5023", user="U0SMITH")
    assert "*이 백업을 삭제할까요?*" in text_of(korean)
    confirm = button(korean, ids.CONFIRM_DELETE)
    assert confirm["text"]["text"] == "백업 #5023 삭제" and confirm["confirm"]["confirm"]["text"] == "삭제"
    assert "되돌릴 수 없습니다" in confirm["confirm"]["text"]["text"]
    assert button(korean, ids.CANCEL)["text"]["text"] == "취소"
    assert "*Delete this backup?*" in text_of(english) and button(english, ids.CANCEL)["text"]["text"] == "Cancel"
    restore, _ = stack.ask("restore 5023", user="U0KIM")
    assert "*백업에서 web-server-01 (12345)을 복원할까요?*" in text_of(restore)
    stack.press(button(restore, ids.OPEN_RESTORE), user="U0KIM")
    form = stack.recorder.wait_for(lambda _r: stack.recorder.api("views.open"))[-1]["view"]
    assert form["title"]["text"] == "서버 복원" and form["submit"]["text"] == "복원"
    assert "확인을 위해 web-server-01 입력" in str(form)
    wrong = stack.submit(form, "web-server-02", user="U0KIM").json()
    assert "이 서버가 아닙니다" in wrong["errors"][ids.RESTORE_INPUT_BLOCK]
    refused, _ = stack.ask("grant U0X 12345", user="U0KIM")
    assert "관리자만 할 수 있는 작업입니다: 역할 부여." in text_of(refused)
    assert "`frobnicate`" in stack.command("frobnicate", user="U0KIM")[0].json()["text"]
    assert "/backup 명령어가 아닙니다" in stack.command("frobnicate", user="U0KIM")[0].json()["text"]
    assert "is not a /backup command" in stack.command("frobnicate", user="U0SMITH")[0].json()["text"]


def test_with_backupbot_language_ko_announcements_and_unchosen_people_get_korean(tmp_path, sim):
    live = LiveStack(tmp_path / "team.db", sim, language="ko")
    try:
        live.ask("language en", user="U0SMITH")
        created, _ = live.ask("create 12345 배포 전", user="UADMIN01")
        assert "백업 *#5033* 생성을 시작했습니다" in text_of(created), "no choice made: the bot's language"
        announced = live.recorder.wait_for(lambda _r: live.recorder.api("chat.postMessage"))[-1]
        assert announced["channel"] == NOTIFY and "수동 백업 *#5033* 생성을 시작했습니다" in announced["text"]
        live.grant("U0SMITH", 12345, "operator")
        english, _ = live.ask("create 12345", user="U0SMITH")
        assert "has started" in text_of(english), "a person who chose English keeps it"
        team = live.recorder.wait_for(lambda _r: live.recorder.api("chat.postMessage")[1:])[-1]
        assert "<@U0SMITH>님이" in team["text"], "the team hears it in the team's language"
    finally:
        live.close()


def test_the_delete_confirmation_knows_the_two_person_rule_from_a_command_and_a_button(tmp_path, sim):
    live = LiveStack(tmp_path / "ruled.db", sim, delete_grace_seconds=30)
    try:
        windowed, _ = live.ask("delete 5023")
        assert "you can still undo it for 30 seconds" in text_of(windowed)
        live.ask("approvals 12345 on")
        for ruled in (live.ask("delete 5023")[0], live.press(button(live.ask("list 12345")[0], ids.DELETE_REQUEST))):
            if isinstance(ruled, tuple):
                ruled = live.reply(ruled[1])
            assert "under the two-person rule" in text_of(ruled) and "undo it for" not in text_of(ruled)
        live.ask("language ko")
        korean, _ = live.ask("delete 5023")
        assert "2인 승인 규칙이 적용되어 있습니다" in text_of(korean) and "승인되는 즉시 삭제되어" in text_of(korean)
        assert "취소할 수 있습니다" not in text_of(korean)
    finally:
        live.close()
