"""Backup policies: scheduled backups, and retention inside the 10-backup limit.

A server has at most one policy (its owner, or an admin, sets it; whoever may see the server may read
it): a schedule in a zone (bot/schedule.py) and a retention rule (bot/retention.py).

Runs happen once per slot, whatever happens. The background loop claims a slot for a policy with one
statement (`policies.last_slot`), and each run is a row unique per server and slot (`policy_runs`), so
several bots run it once. A run's backup is created through `send_write` as the policy (`policy:SERVER`),
its description ending with the run's tag (`[policy rXXXXXXXX]`): a bot that died while creating it, or
an API that did not confirm it, finds the tagged backup by listing before it would ever send again. After
downtime, a slot missed by less than its start window (an hour, or the period if shorter) runs once;
older ones are recorded as missed and raise one alert naming the gap. Slots in a pause, or before the
policy was set, are not runs at all.

Retention touches only the policy's own backups (its run tags), never pinned ones, other manual ones or
automatic ones; it prunes right after one of the policy's backups completed, at most three deletions a
run, each audited as a delete done by the policy, naming who set it. A keep must fit: 10 - the reserved
slots - the server's other manual backups - 1 (a new backup is made before an old one is pruned).
A change that lets a policy delete more (a lower keep) on a server under the two-person rule is a request
a second person approves. Success is quiet; a run that failed, found no room, or was missed raises an
alert (bot/ops/watching.py) that heals when a later run completes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.backup_api import MANUAL_LIMIT, Backup, BackupApiError
from bot.i18n import N_, Words
from bot.ops.approvals import Awaiting
from bot.ops.core import CHAIN_STEP_SECONDS, Actor, Core, ReplyTo
from bot.ops.errors import BadSchedule, KeepTooMany, LowerKeepInSlack, NoPolicy, NotPinnable
from bot.ops.timetable import anchor_of, keep_of, schedule_of, start_window, upcoming
from bot.ops.watching import AlertChange
from bot.ops.writes import Write, WriteKind
from bot.policy import Action
from bot.retention import DEFAULT_KEEP_LAST, Candidate, Keep, Prune, plan
from bot.schedule import previous_slot, slots, zone
from bot.store import AlertKind, ApprovalRequest, ApprovalState, Policy, PolicyRun

RUN_CLAIM_SECONDS = CHAIN_STEP_SECONDS  # a create takes a few API timeouts at most; a claim older, its bot died
MAX_PAUSE = timedelta(days=7)
DESCRIPTION = "Scheduled backup"
NEXT_BACKUP = -1  # the backup the next run will take, as the preview counts it


@dataclass(frozen=True)
class PolicyChange:
    """What one `/backup policy` command or form sets (None: left as it is)."""

    cadence: str | None = None
    days: tuple[int, ...] = ()
    at_time: str | None = None
    every_hours: int | None = None
    zone: str | None = None
    keep: Keep | None = None

    def fields(self) -> dict:
        fields: dict = {}
        if self.cadence is not None:
            fields.update(
                cadence=self.cadence,
                days=self.days,
                at_time=self.at_time,
                every_hours=self.every_hours or 24,
                zone=self.zone,
            )
        if self.keep is not None:
            fields.update(
                keep_last=self.keep.last,
                keep_daily=self.keep.daily,
                keep_weekly=self.keep.weekly,
                keep_monthly=self.keep.monthly,
            )
        return fields


@dataclass(frozen=True)
class SlotBudget:
    """The arithmetic of the 10-manual limit for a policy's keep."""

    reserved: int
    other: int  # the server's manual backups that are not the policy's (pinned ones of its own included)

    @property
    def fits(self) -> int:
        return MANUAL_LIMIT - self.reserved - self.other - 1


@dataclass(frozen=True)
class PolicyView:
    """A server's policy as people read it: next runs, last run, its backups, what the next prune deletes.

    `prune` counts the backup the next run takes (so it says what will happen after it completes);
    `saved` is False for a form's preview of a change not yet made."""

    server_id: int
    name: str | None
    policy: Policy | None
    next_runs: list[datetime]
    last_run: PolicyRun | None = None
    own: tuple[Backup, ...] = ()
    budget: SlotBudget | None = None
    prune: Prune | None = None
    pinned: frozenset[int] = frozenset()
    saved: bool = True


@dataclass(frozen=True)
class PolicyNews:
    """Something about a policy the team hears of: a pause that ended on time."""

    server_id: int
    name: str | None
    event: str  # resumed
    policy: Policy


class Policies(Core):
    """Schedules, runs, retention, pins."""

    def next_runs(self, policy: Policy | None, count: int = 5) -> list[datetime]:
        return upcoming(policy, self._clock(), count)

    async def _listing(self, server_id: int, actor: Actor | None = None) -> list[Backup]:
        """The server's manual backups; a failure is audited for `actor`, if a person asked."""
        call = self.api.list_backups(server_id, "manual")
        return await (self._api(actor, Action.POLICY, call, server_id=server_id) if actor else call)

    async def _look(self, server_id: int, policy: Policy | None, manual: list[Backup]) -> PolicyView:
        """A policy seen against the server's manual backups: its own among them, the budget, pins, the next prune."""
        runs = await self._db(self.store.policy_runs_of, server_id, 10_000)  # newest first
        taken = {run.backup_id for run in runs if run.backup_id}
        pinned = frozenset(await self._db(self.store.pins, server_id))
        # its own: what its runs took (a tag typed by hand into a description makes no backup the policy's)
        own = tuple(b for b in manual if b.id in taken)
        budget = SlotBudget(self.reserved_slots, sum(1 for b in manual if b not in own or b.id in pinned))
        names = await self._db(self.store.known_servers)
        name = names.get(server_id) or (manual[0].server.name if manual else None)
        next_runs = self.next_runs(policy)
        prune = None
        if policy is not None and policy.state != "off":
            with_next = _plan(policy, own, pinned, next_runs[0] if next_runs else None)
            prune = Prune([i for i in with_next.keep if i != NEXT_BACKUP], with_next.delete, with_next.later)
        return PolicyView(server_id, name, policy, next_runs, runs[0] if runs else None, own, budget, prune, pinned)

    # --- reading -----------------------------------------------------------------------------------

    async def policy_view(self, actor: Actor, server_id: int) -> PolicyView:
        """A server's policy in full (whoever may see the server)."""
        await self._authorize(actor, Action.STATUS, server_id)
        policy = await self._db(self.store.policy, server_id)
        view = await self._look(server_id, policy, await self._listing(server_id, actor))
        await self._audit(actor, Action.POLICY, "done", server_id=server_id, detail="read")
        return view

    async def policy_views(self, actor: Actor) -> list[PolicyView]:
        """Every policy the person may see, with its next run (no API call)."""
        admin = await self.is_admin(actor)
        names = await self._db(self.store.known_servers)
        mine = None if admin else {g.server_id for g in await self._db(self.store.grants, actor.user_id)}
        views = []
        for policy in await self._db(self.store.policies):
            if mine is not None and policy.server_id not in mine:
                continue
            runs = await self._db(self.store.policy_runs_of, policy.server_id, 1)
            last = runs[0] if runs else None
            views.append(
                PolicyView(policy.server_id, names.get(policy.server_id), policy, self.next_runs(policy, 1), last)
            )
        await self._audit(actor, Action.POLICY, "done", detail=f"read {len(views)} policies")
        return views

    # --- changing ----------------------------------------------------------------------------------

    async def preview_policy(self, actor: Actor, server_id: int, change: PolicyChange) -> PolicyView:
        """What a change would make of the policy (next runs, what the next prune deletes), nothing saved:
        the form shows it before saving. Refused as saving would be (KeepTooMany)."""
        await self._authorize(actor, Action.POLICY, server_id)
        before = await self._db(self.store.policy, server_id)
        after = self._would_be(server_id, before, change, actor)
        view = await self._look(server_id, after, await self._listing(server_id, actor))
        await self._fits(actor, server_id, keep_of(after), view.budget, audit=False)
        return dataclasses.replace(view, saved=False)

    def _would_be(self, server_id: int, before: Policy | None, change: PolicyChange, actor: Actor) -> Policy:
        now = self._clock().timestamp()
        fields = change.fields()
        if before is None:
            base = Policy(
                server_id, "daily", (), "02:00", 24, self.timezone, DEFAULT_KEEP_LAST, 0, 0, 0, "active", None, "",
                actor.user_id, now, actor.user_id, now, None,
            )  # fmt: skip
        else:
            base = before
        if before is not None and _reanchors(before, change):
            fields.update(set_at=now, last_slot=None, state="active" if base.state == "off" else base.state)
        return dataclasses.replace(base, **fields)

    async def _fits(self, actor: Actor, server_id: int, keep: Keep, budget: SlotBudget, *, audit: bool = True) -> None:
        if keep.most <= budget.fits:
            return
        if audit:
            detail = (
                f"{keep.words()} does not fit: {MANUAL_LIMIT} - {budget.reserved} reserved - "
                f"{budget.other} other - 1 = {budget.fits}"
            )
            await self._audit(actor, Action.POLICY, "failed", server_id=server_id, detail=detail)
        raise KeepTooMany(server_id, keep, budget.fits, budget.reserved, budget.other)

    async def set_policy(
        self, actor: Actor, server_id: int, change: PolicyChange, *, reply_to: ReplyTo | None = None
    ) -> PolicyView | Awaiting:
        """Set a server's schedule and/or keep (owner or admin). A keep must fit the budget; a lower keep on a
        server under the two-person rule is a request a second person approves."""
        await self._authorize(actor, Action.POLICY, server_id)
        await self._from_its_channel(actor, Action.POLICY, server_id)
        before = await self._db(self.store.policy, server_id)
        if before is None and change.cadence is None:
            await self._audit(actor, Action.POLICY, "failed", server_id=server_id, detail="a keep, but no schedule")
            raise NoPolicy(server_id)
        if change.cadence is not None and change.zone is None:
            change = dataclasses.replace(change, zone=self.timezone)
        after = self._would_be(server_id, before, change, actor)
        manual = await self._listing(server_id, actor)
        view = await self._look(server_id, after, manual)
        await self._fits(actor, server_id, keep_of(after), view.budget)
        if before is not None and keeps_fewer(keep_of(before), keep_of(after)) and await self.needs_approval(server_id):
            if not actor.in_slack:  # the request's card and its Approve button live in Slack
                detail = "a lower keep under the two-person rule is asked for in Slack"
                await self._audit(actor, Action.POLICY, "denied", server_id=server_id, detail=detail)
                raise LowerKeepInSlack(server_id)
            return await self._ask_policy_approval(actor, server_id, view.name, before, after, change, reply_to)
        await self._save(actor, server_id, before, change)
        return await self._look(server_id, await self._db(self.store.policy, server_id), manual)

    async def _save(
        self, actor: Actor, server_id: int, before: Policy | None, change: PolicyChange, note: str = ""
    ) -> Policy:
        fields = change.fields()
        if before is None and change.keep is None:
            fields.update(keep_last=DEFAULT_KEEP_LAST)
        if before is not None and _reanchors(before, change):
            fields.update(set_at=self._clock().timestamp(), last_slot=None)  # a new schedule counts from now
            if before.state == "off":
                fields.update(state="active")
        await self._db(self.store.save_policy, server_id, fields, actor.user_id)
        after = await self._db(self.store.policy, server_id)
        await self._audit(actor, Action.POLICY, "done", server_id=server_id, detail=_changed(before, after) + note)
        return after

    async def _ask_policy_approval(
        self,
        actor: Actor,
        server_id: int,
        name: str | None,
        before: Policy,
        after: Policy,
        change: PolicyChange,
        reply_to: ReplyTo | None,
    ) -> Awaiting:
        old, new = keep_of(before), keep_of(after)
        payload = {
            "change": _change_json(change),
            "before": dataclasses.astuple(old),
            "after": dataclasses.astuple(new),
        }
        request = await self._db(
            self.store.create_approval,
            action=Action.POLICY.value,
            backup_id=0,
            server_id=server_id,
            server_name=name or str(server_id),
            target_server_id=server_id,
            target_server_name=name or str(server_id),
            backup_created_at=self._clock().isoformat(),
            backup_type="manual",
            backup_description="",
            requested_by=actor.user_id,
            reason="",
            origin_channel=reply_to.channel_id if reply_to else None,
            response_url=reply_to.response_url if reply_to else None,
            expires_at=(self._clock() + self.approval_ttl).timestamp(),
            safety=0,
            payload=json.dumps(payload),
        )
        detail = f"asked approval: {old.words()} -> {new.words()} (a lower keep, two-person rule)"
        await self._audit(actor, Action.POLICY, "cancelled", server_id=server_id, detail=detail)
        return Awaiting(request)

    async def apply_approved_policy(self, request: ApprovalRequest) -> str:
        """An approved lower keep: saved now, audited for its requester, naming who approved. Its detail."""
        change = _change_from(request.payload)
        before = await self._db(self.store.policy, request.server_id)
        if before is None:
            return "the policy was turned off meanwhile"
        note = f", approved by {request.decided_by}"
        after = await self._save(Actor(request.requested_by), request.server_id, before, change, note)
        return keep_of(after).words()

    async def settle_policy_request(self, request: ApprovalRequest) -> ApprovalState:
        """An approved policy request whose bot died while saving it: done if the policy holds its keep."""
        change = _change_from(request.payload)
        policy = await self._db(self.store.policy, request.server_id)
        held = policy is not None and change.keep is not None and keep_of(policy) == change.keep
        return ApprovalState.DONE if held else ApprovalState.FAILED

    async def pause_policy(
        self, actor: Actor, server_id: int, *, hours: float | None = None, until: str | None = None, reason: str = ""
    ) -> Policy:
        """Pause runs for `hours`, or until a local `YYYY-MM-DDTHH:MM` in the policy's zone (default: a day);
        at most 7 days; said in every view; it ends on time by itself."""
        await self._authorize(actor, Action.POLICY, server_id)
        await self._from_its_channel(actor, Action.POLICY, server_id)
        policy = await self._must_have(actor, server_id, running=True)
        now = self._clock()
        if until is not None:
            ends = datetime.fromisoformat(until).replace(tzinfo=zone(policy.zone)).astimezone(UTC)
        else:
            ends = now + timedelta(hours=hours or 24)
        if ends <= now or ends - now > MAX_PAUSE:
            await self._audit(actor, Action.POLICY, "failed", server_id=server_id, detail="pause out of bounds")
            raise BadSchedule("pause", until or f"{hours:g}h")
        reason = reason.strip()[:200]
        fields = {"state": "paused", "paused_until": ends.timestamp(), "pause_reason": reason}
        await self._db(self.store.save_policy, server_id, fields, actor.user_id)
        detail = f"paused until {ends.isoformat(timespec='minutes')}" + (f": {reason}" if reason else "")
        await self._audit(actor, Action.POLICY, "done", server_id=server_id, detail=detail)
        return await self._db(self.store.policy, server_id)

    async def resume_policy(self, actor: Actor, server_id: int) -> Policy:
        """End a pause now: the slots it covered are not runs (neither caught up nor missed)."""
        await self._authorize(actor, Action.POLICY, server_id)
        await self._from_its_channel(actor, Action.POLICY, server_id)
        policy = await self._must_have(actor, server_id, running=True)
        fields = {"state": "active", "paused_until": None, "pause_reason": ""}
        await self._db(self.store.save_policy, server_id, fields, actor.user_id)
        await self._pass_paused_slots(policy, self._clock())
        await self._audit(actor, Action.POLICY, "done", server_id=server_id, detail="resumed")
        return await self._db(self.store.policy, server_id)

    async def policy_off(self, actor: Actor, server_id: int) -> Policy:
        """No more runs; the policy's backups are kept and no longer pruned."""
        await self._authorize(actor, Action.POLICY, server_id)
        await self._from_its_channel(actor, Action.POLICY, server_id)
        await self._must_have(actor, server_id)
        await self._db(self.store.save_policy, server_id, {"state": "off"}, actor.user_id)
        await self._audit(actor, Action.POLICY, "done", server_id=server_id, detail="off: no more runs or prunes")
        return await self._db(self.store.policy, server_id)

    async def run_policy_now(self, actor: Actor, server_id: int) -> PolicyRun:
        """One run now, outside the schedule (it counts for retention), through the same path as a scheduled one."""
        await self._authorize(actor, Action.POLICY, server_id)
        await self._from_its_channel(actor, Action.POLICY, server_id)
        policy = await self._must_have(actor, server_id, running=True)
        now = self._clock().timestamp()
        run = await self._db(self.store.start_policy_run, server_id, now, "now", claim_seconds=RUN_CLAIM_SECONDS)
        await self._audit(actor, Action.POLICY, "done", server_id=server_id, detail=f"run r{run.id} now")
        with contextlib.suppress(BackupApiError):  # released: the background loop tries again within its window
            await self._take(run, policy)
        return await self._db(self.store.policy_run, run.id)

    async def policy_to_edit(self, actor: Actor, server_id: int) -> tuple[str | None, Policy | None]:
        """The server's name and policy, for the form: only for who may set it (read from the store alone,
        so the form opens within its trigger's 3 seconds)."""
        await self._authorize(actor, Action.POLICY, server_id)
        names = await self._db(self.store.known_servers)
        return names.get(server_id), await self._db(self.store.policy, server_id)

    async def _must_have(self, actor: Actor, server_id: int, *, running: bool = False) -> Policy:
        """The server's policy; with `running`, one that is not off (a schedule set again turns it on)."""
        policy = await self._db(self.store.policy, server_id)
        if policy is None or (running and policy.state == "off"):
            detail = "no policy" if policy is None else "the policy is off"
            await self._audit(actor, Action.POLICY, "failed", server_id=server_id, detail=detail)
            raise NoPolicy(server_id, off=policy is not None)
        return policy

    async def _pass_paused_slots(self, policy: Policy, resumed_at: datetime) -> None:
        """A pause ended: the last slot it covered is claimed, so it is neither run late nor called missed."""
        covered = previous_slot(schedule_of(policy), resumed_at, anchor=anchor_of(policy))
        if covered is not None:
            await self._db(self.store.claim_policy_slot, policy.server_id, covered.timestamp())

    async def pin_backup(self, actor: Actor, backup_id: int, *, pinned: bool) -> tuple[Backup, bool]:
        """Pin a manual backup (never pruned) or unpin it: an owner of its server. True if that changed anything."""
        backup = await self._find(actor, Action.POLICY, backup_id)
        await self._authorize_on_backup(actor, Action.POLICY, backup)
        await self._from_its_channel(actor, Action.POLICY, backup.server.id, backup_id=backup_id)
        audit = {"server_id": backup.server.id, "backup_id": backup_id}
        if backup.backup_type != "manual":
            await self._audit(actor, Action.POLICY, "failed", detail="pin of an automatic backup", **audit)
            raise NotPinnable(backup)
        changed = await self._db(self.store.pin, backup_id, backup.server.id, actor.user_id, pinned=pinned)
        verb = "pinned" if pinned else "unpinned"
        await self._audit(actor, Action.POLICY, "done", detail=verb + ("" if changed else " (unchanged)"), **audit)
        return backup, changed

    # --- the background loop's part ------------------------------------------------------------------

    async def policy_round(self) -> list[AlertChange | PolicyNews]:
        """Each active policy whose slot has come: claimed once, run (or recorded missed); pauses ended on time."""
        now = self._clock()
        events: list[AlertChange | PolicyNews] = []
        names = await self._db(self.store.known_servers)
        for policy in await self._db(self.store.policies):
            if policy.state == "off":
                continue
            name = names.get(policy.server_id)
            if policy.state == "paused":
                ended = policy.paused_until is not None and policy.paused_until <= now.timestamp()
                if ended and await self._db(self.store.resume_if_paused, policy.server_id):
                    events.append(PolicyNews(policy.server_id, name, "resumed", policy))
                    await self._pass_paused_slots(policy, datetime.fromtimestamp(policy.paused_until, UTC))
                    policy = await self._db(self.store.policy, policy.server_id)
                if policy.state == "paused":
                    paused = previous_slot(schedule_of(policy), now, anchor=anchor_of(policy))
                    if paused is not None:  # a slot in a pause is not a run: neither caught up nor missed
                        await self._db(self.store.claim_policy_slot, policy.server_id, paused.timestamp())
                    continue
            slot = previous_slot(schedule_of(policy), now, anchor=anchor_of(policy))
            if slot is None or (policy.last_slot is not None and slot.timestamp() <= policy.last_slot):
                continue
            if await self._db(self.store.claim_policy_slot, policy.server_id, slot.timestamp()):
                events += await self._slot_came(policy, slot, name)
        return events

    async def _slot_came(self, policy: Policy, slot: datetime, name: str | None) -> list[AlertChange]:
        """The slot this bot claimed: run it if within its start window; it and any before it since the
        last claimed one are missed otherwise (one alert naming the gap)."""
        schedule = schedule_of(policy)
        since = datetime.fromtimestamp(policy.last_slot, UTC) if policy.last_slot else anchor_of(policy)
        missed = slots(schedule, since + timedelta(microseconds=1), slot, anchor=anchor_of(policy))
        events: list[AlertChange] = []
        if self._clock() - slot <= start_window(schedule):
            run = await self._db(
                self.store.start_policy_run,
                policy.server_id,
                slot.timestamp(),
                "scheduled",
                claim_seconds=RUN_CLAIM_SECONDS,
            )
            if run is not None:
                with contextlib.suppress(BackupApiError):  # released: follow_runs tries again within the window
                    events += await self._take(run, policy, name)
        else:
            missed.append(slot)
        if missed:
            for moment in missed:
                await self._db(
                    self.store.start_policy_run, policy.server_id, moment.timestamp(), "scheduled", state="missed"
                )
            facts = {"from": missed[0].timestamp(), "to": missed[-1].timestamp(), "count": len(missed)}
            events += await self._alert(policy.server_id, AlertKind.RUN_MISSED, facts, name)
        return events

    async def _take(self, run: PolicyRun, policy: Policy, name: str | None = None) -> list[AlertChange]:
        """Take a run's backup: adopted if a backup with its tag is listed already; skipped if there is no room.
        A listing that fails leaves the run to the next round (raised)."""
        try:
            manual = await self.api.list_backups(run.server_id, "manual")
        except BackupApiError:
            await self._db(self.store.release_policy_run, run.id)
            raise
        tagged = _tagged(manual, run)
        if tagged:
            detail = "adopted: its backup was found by its tag"
            await self._db(
                self.store.move_policy_run, run.id, "creating", "running", backup_id=tagged[0].id, detail=detail
            )
            return []
        if len(manual) >= MANUAL_LIMIT:
            pinned = await self._db(self.store.pins, run.server_id)
            fill = sorted((b for b in manual if b.id not in pinned), key=lambda b: (b.created_at, b.id))
            facts = {"count": len(manual), "oldest": [b.id for b in fill[:3]], "pinned": sorted(pinned), "run": run.id}
            await self._db(
                self.store.move_policy_run, run.id, "creating", "skipped", detail=f"no room: {len(manual)} manual"
            )
            return await self._alert(run.server_id, AlertKind.RUN_SKIPPED, facts, name)
        write = Write(
            WriteKind.CREATE, run.server_id, description=f"{DESCRIPTION} {run.tag}", path="policy", ref=run.id
        )
        context = f"run r{run.id} of the policy set by {policy.set_by}"
        sent = await self.send_write(Actor.policy(run.server_id), write, context=context)
        if sent.done and sent.backup is not None:
            await self._db(self.store.move_policy_run, run.id, "creating", "running", backup_id=sent.backup.id)
            return []
        why = sent.why.english() if sent.why else ""
        if sent.done or sent.unknown:  # it may be there: the next look finds it by its tag, or runs it again
            await self._db(self.store.move_policy_run, run.id, "creating", "creating", detail=f"not confirmed: {why}")
            return []
        await self._db(self.store.move_policy_run, run.id, "creating", "failed", detail=why)
        return await self._alert(run.server_id, AlertKind.RUN_FAILED, {"run": run.id, **_why_facts(sent.why)}, name)

    async def _alert(self, server_id: int, kind: AlertKind, facts: dict, name: str | None, subject: int | None = None):
        alert = await self._db(self.store.open_alert, server_id, kind.value, subject, facts)
        return [AlertChange(alert, "opened", name)] if alert else []

    async def follow_runs(self) -> list[AlertChange]:
        """Runs whose backup is running, or whose create was not confirmed: looked at once per round, by server."""
        changes: list[AlertChange] = []
        names = await self._db(self.store.known_servers)
        runs = await self._db(self.store.claim_policy_runs, ("running", "creating"), RUN_CLAIM_SECONDS)
        by_server: dict[int, list[PolicyRun]] = {}
        for run in runs:
            by_server.setdefault(run.server_id, []).append(run)
        for server_id, theirs in by_server.items():
            policy = await self._db(self.store.policy, server_id)
            try:
                manual = await self.api.list_backups(server_id, "manual")
            except BackupApiError:
                for run in theirs:
                    await self._db(self.store.release_policy_run, run.id)
                continue
            for run in theirs:
                changes += await self._follow(run, policy, manual, names.get(server_id))
        return changes

    async def _follow(self, run: PolicyRun, policy: Policy | None, manual: list[Backup], name: str | None):
        context = f"run r{run.id} of the policy set by {policy.set_by if policy else '?'}"
        for record in await self._db(self.store.writes_for, run.id):  # a bot died sending one: audited as it ended
            await self.settle_recorded(record, context, older_than=RUN_CLAIM_SECONDS / 2)
        if run.state == "creating":
            return await self._unconfirmed(run, policy, manual, name)
        backup = next((b for b in manual if b.id == run.backup_id), None)
        if backup is not None and backup.is_running:
            await self._db(self.store.release_policy_run, run.id)
            return []
        if backup is None or not backup.is_restorable:
            status = backup.status if backup else "gone"
            await self._db(
                self.store.move_policy_run, run.id, "running", "failed", detail=f"backup {run.backup_id} {status}"
            )
            facts = {"run": run.id, "id": run.backup_id, "status": status}
            return await self._alert(run.server_id, AlertKind.RUN_FAILED, facts, name, run.backup_id)
        pruned = await self._prune(run, policy, manual) if policy is not None and policy.state != "off" else []
        if not await self._db(self.store.move_policy_run, run.id, "running", "completed", pruned=pruned):
            return []
        healed = []
        recovery = {"id": backup.id, "type": "manual", "at": backup.created_at.timestamp()}
        for kind in (AlertKind.RUN_FAILED, AlertKind.RUN_SKIPPED, AlertKind.RUN_MISSED):
            for alert in await self._db(self.store.alerts_of, run.server_id, kind.value):
                recovered = await self._db(self.store.recover_alert, alert.id, recovery)
                if recovered:
                    healed.append(AlertChange(recovered, "recovered", name))
        return healed

    async def _unconfirmed(self, run: PolicyRun, policy: Policy | None, manual: list[Backup], name: str | None):
        """A run whose create a bot began but never saw confirmed (it died, or the API did not answer): while
        its start window lasts, taken again the one way (`_take` adopts the backup if it is listed with its
        tag, before it would ever send); after, adopted if listed, else failed."""
        window = start_window(schedule_of(policy)) if policy else timedelta(0)
        late = self._clock().timestamp() - run.slot > window.total_seconds()
        if policy is not None and policy.state == "active" and not late:
            try:
                return await self._take(run, policy, name)
            except BackupApiError:
                return []
        tagged = _tagged(manual, run)
        if tagged:
            detail = "adopted: its backup was found by its tag"
            await self._db(
                self.store.move_policy_run, run.id, "creating", "running", backup_id=tagged[0].id, detail=detail
            )
            return []
        why = Words(
            N_("the backup API did not confirm it, no backup with its tag is listed, and its start window has passed")
        )
        await self._db(self.store.move_policy_run, run.id, "creating", "failed", detail=why.english())
        return await self._alert(run.server_id, AlertKind.RUN_FAILED, {"run": run.id, **_why_facts(why)}, name)

    async def _prune(self, run: PolicyRun, policy: Policy, manual: list[Backup]) -> list[int]:
        """Right after one of its backups completed (in `manual`, the round's listing): delete what the policy's
        rule no longer keeps (at most 3), each through send_write as the policy, audited naming who set it."""
        view = await self._look(run.server_id, policy, manual)
        prune = _plan(policy, view.own, view.pinned)
        deleted = []
        for backup_id in prune.delete:
            write = Write(WriteKind.DELETE, run.server_id, backup_id, path="prune", ref=run.id)
            context = f"pruned by the policy set by {policy.set_by} ({keep_of(policy).words()}), run r{run.id}"
            sent = await self.send_write(Actor.policy(run.server_id), write, context=context)
            if sent.done or sent.gone:
                deleted.append(backup_id)
        return deleted


def _plan(policy: Policy, own: tuple[Backup, ...], pinned: frozenset[int], next_run: datetime | None = None) -> Prune:
    """The policy's rule over its own completed or failed backups (running ones wait), and over the backup its
    next run takes when `next_run` is given (as `NEXT_BACKUP`): the prune a run makes, and the one it will make."""
    candidates = [Candidate(b.id, b.created_at, b.is_restorable, True, b.id in pinned) for b in own if not b.is_running]
    if next_run is not None:
        candidates.append(Candidate(NEXT_BACKUP, next_run, True, True))
    return plan(candidates, keep_of(policy), zone(policy.zone))


def _tagged(manual: list[Backup], run: PolicyRun) -> list[Backup]:
    """The run's backup, listed with its tag: made no earlier than the run began (a minute of clock skew)."""
    since = datetime.fromtimestamp((run.started_at or run.slot) - 60, UTC)
    return [b for b in manual if b.description.endswith(run.tag) and b.created_at >= since]


def _reanchors(before: Policy, change: PolicyChange) -> bool:
    """A schedule that differs from the one in force (or an off policy set again) counts its slots from now;
    the same schedule said again (the form always sends it) keeps its slots."""
    if change.cadence is None:
        return False
    if before.state == "off":
        return True
    same = (before.cadence, tuple(before.days), before.at_time, before.every_hours, before.zone)
    said = (change.cadence, tuple(change.days), change.at_time, change.every_hours or 24, change.zone)
    return same != said


def keeps_fewer(before: Keep, after: Keep) -> bool:
    """May the new rule keep fewer backups than the old in some case (so it would delete more)? A smaller count
    of the same kind, or a change of kind (last N against daily/weekly/monthly), which can go either way."""
    if before.by_period != after.by_period:
        return True
    if after.by_period:
        return after.daily < before.daily or after.weekly < before.weekly or after.monthly < before.monthly
    return after.last < before.last


def _why_facts(why: Words | None) -> dict:
    """Why a run failed, kept so that each reader reads it in their language (bot/i18n.py Words)."""
    if why is None:
        return {}
    return {"why": why.message, "values": {name: str(value) for name, value in why.values.items()}}


def _changed(before: Policy | None, after: Policy | None) -> str:
    """What a policy change changed, in words for the audit."""

    def words(p: Policy | None) -> str:
        if p is None:
            return "none"
        return f"{schedule_of(p).words()}, {keep_of(p).words()}, {p.state}"

    return f"policy: {words(before)} -> {words(after)}"


def _change_json(change: PolicyChange) -> dict:
    data = dataclasses.asdict(change)
    data["keep"] = dataclasses.astuple(change.keep) if change.keep else None
    return data


def _change_from(payload: str | None) -> PolicyChange:
    data = json.loads(payload or "{}").get("change") or {}
    keep = data.pop("keep", None)
    data["days"] = tuple(data.get("days") or ())
    return PolicyChange(**data, keep=Keep(*keep) if keep else None)
