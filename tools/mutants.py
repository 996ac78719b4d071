#!/usr/bin/env python3
"""Plant known bugs, one at a time, and see whether the tests notice: hand-made mutation testing.

Each mutant below is a plausible bug in code where a bug would hurt people (roles, confirmations,
the two-person rule, the undo window, the safety chain, escaping, the audit, the outbox, the API
client's retries, the channel rule, the lease, the response_url check, the CSV, Block Kit's caps,
the typed name): a snippet that must occur exactly once in its file, what replaces it, and the test
files that should catch it. For each, the tree is copied (the files git tracks or would add, as they
are in the working tree: a new test counts before its commit), the snippet replaced in the copy, and
those tests run there (`pytest -x -n 0`); a failing run kills the mutant, a passing one lets it survive.

    python tools/mutants.py                 # every mutant, two at a time; prints the kill rate
    python tools/mutants.py --only undo     # the mutants whose name contains "undo"
    python tools/mutants.py --list          # what there is, without running anything
    python tools/mutants.py --check         # only check that every snippet is still found exactly once
    python tools/mutants.py --locate        # after code moved: which file now holds each stale snippet

Exit status: 2 if a snippet is not found exactly once (the list is stale: code moved or changed; fix
the mutant's `path` or `find`), 1 if `--fail-under` is given and the kill rate is below it, else 0.
`tests/test_mutants.py` runs the `--check` part in the suite, so a stale list fails CI.

The working tree is never touched: copies live in a temporary directory, and Python is pointed at
the copy (PYTHONPATH, the working directory); each write gives the file a new modification time, so
no bytecode compiled from another version of it is ever used.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # the file, from the repository's root: the one field to change when code moves
    find: str  # an exact snippet of that file, found exactly once
    replace: str
    tests: tuple[str, ...]  # test files (or node ids) that should catch it
    what: str  # the bug, in one line


M = Mutant  # M(name, path, find, replace, tests, what): the path is the second field, written out in each

MUTANTS: list[Mutant] = [
    M("role-undo-by-anyone", "bot/ops/undo.py",
      "        if actor.user_id != window.requested_by:\n            try:\n                await self._authorize(actor, Action.DELETE, window.server_id",
      "        if False:\n            try:\n                await self._authorize(actor, Action.DELETE, window.server_id",
      ("tests/test_safety_nets.py",), "a viewer may undo someone else's delete"),
    M("undo-after-due", "bot/store/queries.py", "WHERE id = ? AND state = 'waiting' \"\n                \"AND due_at > ?\",",
      "WHERE id = ? AND state = 'waiting' \"\n                \"AND due_at > ? - 3600\",",
      ("tests/test_safety_nets.py",), "Undo is accepted after the time the reply named"),
    M("safety-of-the-backups-server", "bot/ops/chains.py",
      "write = Write(WriteKind.CREATE, target, description=description, path=\"chain\", ref=chain.id)",
      "write = Write(WriteKind.CREATE, source.server_id, description=description, path=\"chain\", ref=chain.id)",
      ("tests/test_cross_server.py",), "the safety backup is taken of the backup's server, not the one overwritten"),
    M("escape-approval-reason", "bot/slack/views/base.py",
      "words = {\"type\": \"plain_text\", \"text\": truncate(reason, 2000), \"emoji\": False}",
      "words = {\"type\": \"mrkdwn\", \"text\": truncate(reason, 2000)}",
      ("tests/test_approvals.py",), "the reason on an approval card is mrkdwn, so it can fake a decision"),
    M("outbox-retry-after-ignored", "bot/store/queries.py", "\"AND not_before <= ? AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?) \"",
      "\"AND not_before <= ? + 3600 AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?) \"",
      ("tests/test_faults.py",), "a rate-limited announcement is sent again before Slack's Retry-After"),
    M("channel-admins-exempt", "bot/ops/core.py", "        if not actor.in_slack:\n            return\n        for server_id",
      "        if not actor.in_slack or await self.is_admin(actor):\n            return\n        for server_id",
      ("tests/test_channels.py",), "admins are not held to a server's channels"),
    M("lease-renewed-too-late", "bot/chores.py", "(self.lease_seconds / 3 if leading else self.lease_seconds / 10)",
      "(self.lease_seconds * 2 if leading else self.lease_seconds / 10)",
      ("tests/test_follower.py", "tests/test_replicas.py"), "a leader renews its lease only after it lapsed"),
    M("csv-minus-and-at", "bot/__main__.py", "FORMULA_START = (\"=\", \"+\", \"-\", \"@\", \"\\t\", \"\\r\")",
      "FORMULA_START = (\"=\", \"+\", \"\\t\", \"\\r\")", ("tests/test_cli.py",), "CSV cells starting with - or @ are not neutralised"),
    # --- roles ------------------------------------------------------------------------------------
    M("role-delete-by-operator", "bot/policy.py", "Action.DELETE: Role.OWNER,", "Action.DELETE: Role.OPERATOR,",
      ("tests/test_policy.py", "tests/test_actions.py"), "operators may delete"),
    M("role-admin-only-to-anyone", "bot/policy.py", "    if action in ADMIN_ONLY:\n        return False",
      "    if action in ADMIN_ONLY:\n        return role is not None",
      ("tests/test_policy.py", "tests/test_commands.py"), "anyone with a role may grant, revoke, read the audit"),
    M("role-no-role-leaks-backup", "bot/ops/core.py", "            if exc.role is None:\n                raise BackupNotFound(backup.id) from None",
      "            pass", ("tests/test_commands.py", "tests/test_cross_server.py"),
      "someone with no role learns that a backup exists (told 'no role' instead of 'no such backup')"),
    M("role-restore-target-unchecked-at-request", "bot/ops/confirmations.py",
      "        if target != backup.server.id:\n            await self._authorize(actor, Action.RESTORE, target, backup_id=backup_id)",
      "        pass", ("tests/test_cross_server.py",),
      "a restore onto another server is offered without the owner role on the target"),
    M("role-restore-target-unchecked-at-press", "bot/ops/confirmations.py",
      "        if conf.target_server_id != conf.server_id:\n            await self._authorize(actor, action, conf.target_server_id",
      "        if False:\n            await self._authorize(actor, action, conf.target_server_id",
      ("tests/test_cross_server.py",), "at the press, rights are checked on the backup's server only, not the target"),
    M("role-press-not-checked", "bot/ops/confirmations.py", "        conf = await self.pending_confirmation(actor, token, action)\n        await self._authorize_on(actor, conf)\n",
      "        conf = await self.pending_confirmation(actor, token, action)\n",
      ("tests/test_actions.py",), "whoever presses a confirmation is not checked (only who asked)"),
    M("role-cancel-by-anyone", "bot/ops/confirmations.py", "        if actor.user_id != conf.requested_by:\n            await self._authorize_on(actor, conf)",
      "        pass", ("tests/test_actions.py",), "anyone may cancel someone else's confirmation"),
    M("role-store-admins-ignored", "bot/ops/core.py",
      "            return known.is_admin\n",
      "            return False\n", ("tests/test_commands.py", "tests/test_cli.py"),
      "admins added with `vps-backup-bot admin add` are not admins in Slack"),
    # --- confirmations ------------------------------------------------------------------------------
    M("confirm-never-expires", "bot/ops/confirmations.py", "if conf.created_at + self.confirmation_ttl >= self._clock():", "if True:",
      ("tests/test_ops.py", "tests/test_actions.py"), "a confirmation never expires"),
    M("confirm-used-twice", "bot/ops/confirmations.py", "if not await self._db(self.store.use_confirmation, conf.id, actor.user_id):",
      "if not await self._db(self.store.use_confirmation, conf.id, actor.user_id) and False:",
      ("tests/test_actions.py", "tests/test_ops.py"), "a confirmation is not spent: a second press acts again"),
    M("confirm-any-action", "bot/ops/confirmations.py", "conf.state is ConfirmationState.PENDING and conf.action == action.value",
      "conf.state is ConfirmationState.PENDING", ("tests/test_actions.py", "tests/test_ops.py"),
      "a delete's confirmation token confirms a restore (and the reverse)"),
    M("confirm-restore-of-unfinished-backup", "bot/ops/confirmations.py",
      "        if action is Action.RESTORE and not backup.is_restorable:\n            await self._void(",
      "        if False:\n            await self._void(", ("tests/test_faults.py", "tests/test_actions.py"),
      "a backup no longer completed at the press is restored anyway"),
    M("typed-name-prefix", "bot/ops/confirmations.py", "if typed.strip() not in (conf.target_server_name, str(conf.target_server_id)):",
      "if not any(n.startswith(typed.strip()) for n in (conf.target_server_name, str(conf.target_server_id))):",
      ("tests/test_actions.py", "tests/test_cross_server.py"), "any prefix of the server's name confirms a restore"),
    # --- the two-person rule -------------------------------------------------------------------------
    M("rule-approver-on-backup-server-only", "bot/ops/approvals.py", "for server_id in sorted(request.servers):",
      "for server_id in [request.server_id]:", ("tests/test_cross_server.py",),
      "an approval of a restore onto another server is checked on the backup's server only"),
    M("rule-target-not-ruled", "bot/ops/confirmations.py",
      "if await self.needs_approval(conf.server_id, conf.target_server_id):\n            return await self._ask_approval(actor, conf, backup, reason, reply_to, safety=safety)",
      "if await self.needs_approval(conf.server_id):\n            return await self._ask_approval(actor, conf, backup, reason, reply_to, safety=safety)",
      ("tests/test_cross_server.py",), "a restore onto a ruled server from an unruled server's backup skips approval"),
    M("rule-home-offers-to-owner-of-one", "bot/ops/home.py",
      "        for server_id in request.servers:\n            role = await self._db(self.store.role_of, actor.user_id, server_id)",
      "        for server_id in [request.server_id]:\n            role = await self._db(self.store.role_of, actor.user_id, server_id)",
      ("tests/test_cross_server.py", "tests/test_home.py"),
      "the Home tab offers a cross-server decision to an owner of the backup's server only"),
    M("rule-any-becomes-all", "bot/ops/approvals.py", "return any(sid in rules for sid in server_ids)", "return all(sid in rules for sid in server_ids)",
      ("tests/test_cross_server.py", "tests/test_approvals.py"), "a restore needs approval only if both servers are ruled"),
    M("rule-admin-approves-own", "bot/ops/approvals.py",
      "        if actor.user_id == request.requested_by:\n            await self._audit(actor, action, \"denied\", detail=\"may not decide",
      "        if actor.user_id == request.requested_by and actor.user_id not in self.admins:\n            await self._audit(actor, action, \"denied\", detail=\"may not decide",
      ("tests/test_approvals.py",), "an admin may approve their own request"),
    M("rule-claimed-twice", "bot/store/queries.py", "WHERE id = ? AND state = 'pending' AND expires_at > ?\",",
      "WHERE id = ? AND expires_at > ?\",", ("tests/test_approvals.py", "tests/test_store.py"),
      "two approvals at once both send the write"),
    M("rule-expiry-ignored-at-press", "bot/ops/approvals.py", "and (request.expires_at <= self._clock().timestamp())", "and False",
      ("tests/test_approvals.py",), "a press after expiry is not told 'expired'"),
    M("rule-make-room-skips-approval", "bot/ops/room.py",
      "    async def _not_ruled(self, actor: Actor, server_id: int, backup_id: int) -> None:\n        if await self.needs_approval(server_id):",
      "    async def _not_ruled(self, actor: Actor, server_id: int, backup_id: int) -> None:\n        if False:",
      ("tests/test_safety_nets.py",), "making room on a ruled server deletes without approval"),
    M("rule-approved-restore-without-safety", "bot/ops/approvals.py", "if action is Action.RESTORE and request.safety:",
      "if False and request.safety:", ("tests/test_safety_nets.py", "tests/test_cross_server.py"),
      "an approved restore skips the safety backup the requester asked for"),
    # --- the undo window ------------------------------------------------------------------------------
    M("undo-window-skipped", "bot/ops/confirmations.py", "        if self.delete_grace > timedelta(0):\n            window = await",
      "        if False:\n            window = await", ("tests/test_safety_nets.py",), "a confirmed delete is sent at once"),
    M("undo-window-sent-early", "bot/store/queries.py", "SELECT id FROM delete_windows WHERE (state = 'waiting' AND due_at <= ?)",
      "SELECT id FROM delete_windows WHERE (state = 'waiting' AND due_at <= ? + 5)",
      ("tests/test_safety_nets.py",), "a delete is sent 5 seconds before its window ends"),
    M("undo-claim-not-exclusive", "bot/store/queries.py", "\"AND (state = 'waiting' OR claimed_until < ?) RETURNING id\",",
      "\"AND (state IN ('waiting', 'sending') OR claimed_until < ?) RETURNING id\",",
      ("tests/test_safety_nets.py", "tests/test_store.py"), "a delete being sent is claimed again by another bot"),
    # --- the safety chain -----------------------------------------------------------------------------
    M("safety-only-failed-stops", "bot/ops/chains.py", "        elif not safety.is_restorable:\n            why = Words(",
      "        elif safety.status == \"failed\":\n            why = Words(", ("tests/test_safety_nets.py",),
      "a safety backup ending `error` or `cancelled` lets the restore go"),
    M("safety-watched-on-wrong-server", "bot/follower.py", "chains_by_server[chain.target_server_id].append(chain)",
      "chains_by_server[chain.server_id].append(chain)", ("tests/test_cross_server.py",),
      "a cross-server chain is watched in the backup's server's list"),
    M("safety-box-ignored", "bot/ops/confirmations.py", "        if safety:\n            return await self._start_chain(actor, conf, reply_to)",
      "        if False:\n            return await self._start_chain(actor, conf, reply_to)",
      ("tests/test_safety_nets.py",), "the ticked safety-backup box is ignored"),
    M("safety-chain-claim-ignored", "bot/ops/chains.py",
      "        if not await self._db(self.store.move_chain, chain.id, ChainState.WAITING, ChainState.RESTORING):\n            return None",
      "        await self._db(self.store.move_chain, chain.id, ChainState.WAITING, ChainState.RESTORING)",
      ("tests/test_safety_nets.py",), "two rounds racing on one chain both send the restore"),
    M("safety-running-counts-as-done", "bot/backup_api.py", "        return self.status == \"completed\"", "        return self.status != \"failed\"",
      ("tests/test_safety_nets.py", "tests/test_follower.py"), "any status but `failed` counts as completed"),
    M("safety-undoes-counted-on-backups-server", "bot/ops/confirmations.py",
      "on_target = [b for b in backups if b.server.id == target]",
      "on_target = [b for b in backups if b.server.id == backup.server.id]", ("tests/test_cross_server.py",),
      "the restore confirmation counts the backup's server's newer backups, not the target's"),
    # --- escaping -------------------------------------------------------------------------------------
    M("escape-angle-brackets", "bot/slack/views/base.py", '.replace("<", "&lt;").replace(">", "&gt;")', "",
      ("tests/test_views.py",), "`<!channel>` in a description pings everyone"),
    M("escape-description-in-list", "bot/slack/views/base.py", "escape(truncate(backup.description, 500)).splitlines()",
      "truncate(backup.description, 500).splitlines()", ("tests/test_views.py",),
      "a backup's description in a listing is not escaped"),
    M("audit-one-line", "bot/store/records.py", 'return CONTROL.sub("\\ufffd", LINE_BREAKS.sub("⏎", text))',
      'return CONTROL.sub("\\ufffd", text)', ("tests/test_faults.py", "tests/test_store.py"),
      "a description with a line break forges a second audit line"),
    # --- the audit ------------------------------------------------------------------------------------
    M("audit-denied-not-written", "bot/ops/core.py",
      "            needed = \"admin\" if server_id is None else _needed(action)\n            await self._audit(",
      "            needed = \"admin\" if server_id is None else _needed(action)\n            (lambda *a, **k: asyncio.sleep(0))(",
      ("tests/test_actions.py", "tests/test_commands.py"), "a refusal for want of a role is not audited"),
    M("audit-api-failure-not-written", "bot/ops/core.py",
      "        except BackupApiError as exc:\n            await self._audit(actor, action, \"failed\", detail=f\"{type(exc).__name__}: {exc}\", **audit)",
      "        except BackupApiError as exc:\n            pass",
      ("tests/test_faults.py", "tests/test_ops.py"), "an attempt the API failed is not audited"),
    M("audit-cancel-not-written", "bot/ops/confirmations.py",
      "        await self._audit(actor, action, \"cancelled\", server_id=conf.target_server_id, backup_id=conf.backup_id)\n        return conf",
      "        return conf", ("tests/test_actions.py",), "a cancelled confirmation is not audited"),
    # --- the outbox -----------------------------------------------------------------------------------
    M("outbox-unreachable-dropped", "bot/slack/notifier.py",
      "self.store.announcement_retry, item, after_seconds=UNREACHABLE_RETRY_SECONDS, error=\"unreachable\"",
      "self.store.announcement_failed, item, error=\"unreachable\"", ("tests/test_faults.py",),
      "an announcement Slack could not be reached for is dropped"),
    M("outbox-not-kept-first", "bot/slack/notifier.py", "self.store.enqueue_announcement, channel, message, claim_seconds=SEND_CLAIM_SECONDS\n            )",
      "lambda *a, **k: None\n            )", ("tests/test_faults.py",), "an announcement is not kept in the outbox before it is sent"),
    # --- the API client's retries ----------------------------------------------------------------------
    M("api-reads-not-retried", "bot/backup_api.py", "                if attempt >= self._read_attempts:", "                if attempt >= 1:",
      ("tests/test_backup_api.py", "tests/test_faults.py"), "a read that met a 503 is not retried"),
    M("api-long-retry-after-slept", "bot/backup_api.py", "                    if exc.retry_after > MAX_RETRY_AFTER_SECONDS:\n                        raise",
      "                    pass", ("tests/test_faults.py",), "a Retry-After of minutes is slept through while a person waits"),
    M("api-timeouts-retried", "bot/backup_api.py", "            except ApiTimeout:\n                raise\n", "",
      ("tests/test_backup_api.py", "tests/test_faults.py"), "a read that timed out is retried (three timeouts in a row)"),
    M("api-write-retried", "bot/backup_api.py",
      "        response = await self._send(method, path, json=payload)\n        _raise_for_status(response, what=what)",
      "        response = await self._send(method, path, json=payload)\n        if response.status_code >= 500:\n            response = await self._send(method, path, json=payload)\n        _raise_for_status(response, what=what)",
      ("tests/test_backup_api.py", "tests/test_faults.py"), "a write that met a 5xx is sent again on its own"),
    M("api-unreadable-write-failed", "bot/backup_api.py", "            raise AcceptedButUnreadable(\n                f\"the backup API accepted the backup",
      "            raise UnexpectedResponse(\n                f\"the backup API accepted the backup", ("tests/test_faults.py",),
      "a create the API accepted, with an unreadable answer, is told as failed"),
    # --- the channel rule -----------------------------------------------------------------------------
    M("channel-first-server-only", "bot/ops/core.py", "for server_id in dict.fromkeys(server_ids):", "for server_id in server_ids[:1]:",
      ("tests/test_cross_server.py",), "the channel rule checks only the backup's server, not the target"),
    M("channel-create-unchecked", "bot/ops/backups.py", "        await self._from_its_channel(actor, Action.CREATE, server_id)\n", "",
      ("tests/test_channels.py",), "a backup of a bound server is created from any channel"),
    M("channel-announced-in-notify", "bot/slack/notifier.py", "            if bound:\n                return bound", "            pass",
      ("tests/test_channels.py",), "a bound server's news goes to the notify channel"),
    # --- the lease ------------------------------------------------------------------------------------
    M("lease-taken-while-held", "bot/store/queries.py", "\"WHERE leases.holder = excluded.holder OR leases.expires_at < ? RETURNING holder\",",
      "\"WHERE leases.holder = excluded.holder OR leases.expires_at > ? RETURNING holder\",",
      ("tests/test_store.py", "tests/test_follower.py"), "a bot takes the poller lease another holds"),
    M("lease-kept-at-stop", "bot/store/queries.py", "\"UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?\"",
      "\"UPDATE leases SET expires_at = expires_at WHERE name = ? AND holder = ?\"",
      ("tests/test_store.py", "tests/test_follower.py"), "a bot that stops cleanly keeps the lease until it lapses"),
    # --- response_url ---------------------------------------------------------------------------------
    M("response-url-suffix", "bot/slack/notifier.py", "        if parts.hostname == SLACK_HOOKS_HOST:",
      "        if (parts.hostname or \"\").endswith(\"slack.com\"):", ("tests/test_response_urls.py",),
      "replies are posted to any host ending in slack.com (evilslack.com, api.slack.com)"),
    M("response-url-any-port", "bot/slack/notifier.py", "parts.scheme in (\"http\", \"https\") and parts.netloc in self._allowed",
      "parts.scheme in (\"http\", \"https\") and parts.hostname in {a.split(\":\")[0] for a in self._allowed}",
      ("tests/test_response_urls.py",), "a stand-in's host is trusted on any port"),
    M("response-url-plain-http", "bot/slack/notifier.py", "            return parts.scheme == \"https\" and parts.port in (None, 443)",
      "            return True", ("tests/test_response_urls.py",), "hooks.slack.com is posted to over plain HTTP or another port"),
    # --- the CSV and Block Kit's caps -----------------------------------------------------------------
    M("blocks-cap-100", "bot/slack/views/base.py", "MAX_BLOCKS = 50", "MAX_BLOCKS = 100",
      ("tests/test_slack_limits.py", "tests/test_views.py", "tests/test_i18n.py"), "a message may have 100 blocks"),
    M("blocks-home-cap-200", "bot/slack/views/home.py", "MAX_HOME_BLOCKS = 100", "MAX_HOME_BLOCKS = 200",
      ("tests/test_home.py",), "the Home tab may have 200 blocks"),
    M("blocks-page-30", "bot/slack/views/base.py", "PAGE_SIZE = 20", "PAGE_SIZE = 30", ("tests/test_views.py", "tests/test_slack_limits.py"),
      "a page of the list has 30 backups (63 blocks)"),
    # --- backup policies ------------------------------------------------------------------------------
    M("policy-pinned-pruned", "bot/retention.py", "    own = [b for b in backups if b.own and not b.pinned]",
      "    own = [b for b in backups if b.own]", ("tests/test_retention.py", "tests/test_policies.py"),
      "a pinned backup of the policy's own is pruned"),
    M("policy-prunes-others", "bot/ops/policies.py", "        own = tuple(b for b in manual if b.id in taken)",
      "        own = tuple(manual)", ("tests/test_policies.py",), "retention deletes manual backups the policy did not make"),
    M("policy-no-deletion-cap", "bot/retention.py", "doomed[:max_deletions], doomed[max_deletions:]", "doomed, []",
      ("tests/test_retention.py",), "one prune deletes any number of backups"),
    M("policy-none-left", "bot/retention.py", "        kept = {done[0].id}  # never fewer than one completed backup of its own",
      "        kept = set()", ("tests/test_retention.py",), "a rule that keeps nothing leaves the policy with no completed backup"),
    M("policy-no-adoption", "bot/ops/policies.py",
      "A listing that fails leaves the run to the next round (raised).\"\"\"",
      "A listing that fails leaves the run to the next round (raised).\"\"\"\n        run = dataclasses.replace(run, id=\"f\" * 8)",
      ("tests/test_policies.py",), "a bot that died mid-create takes a second backup instead of adopting the tagged one"),
    M("policy-run-unique", "bot/store/schema.py", "        unique=((\"server_id\", \"slot\"),),\n        since=12,", "        since=12,",
      ("tests/test_store.py", "tests/test_policies.py"), "two rows for one slot: with the slot claim gone too, a slot would run twice"),
    M("policy-lower-keep-unapproved", "bot/ops/policies.py", "    if after.by_period:\n        return after.daily < before.daily or after.weekly < before.weekly or after.monthly < before.monthly\n    return after.last < before.last",
      "    return False", ("tests/test_policies.py",), "a lower keep on a server under the two-person rule is saved without approval"),
    M("policy-late-slot-runs", "bot/ops/policies.py", "        if self._clock() - slot <= start_window(schedule):",
      "        if True:", ("tests/test_policies.py",), "a slot long past (the bot was down) runs anyway instead of being missed"),
    M("policy-automatic-pinned", "bot/ops/policies.py", "        if backup.backup_type != \"manual\":", "        if False:",
      ("tests/test_policies.py",), "an automatic backup can be pinned"),
    M("policy-keep-unbounded", "bot/ops/policies.py", "        if keep.most <= budget.fits:\n            return", "        return",
      ("tests/test_policies.py",), "a keep that does not fit the 10-backup limit is saved"),
    M("policy-set-by-viewer", "bot/ops/policies.py",
      "        await self._authorize(actor, Action.POLICY, server_id)\n        await self._from_its_channel(actor, Action.POLICY, server_id)\n        before = await self._db(self.store.policy, server_id)",
      "        await self._from_its_channel(actor, Action.POLICY, server_id)\n        before = await self._db(self.store.policy, server_id)",
      ("tests/test_policies.py",), "a viewer sets a server's policy"),
    M("policy-kind-change-unapproved", "bot/ops/policies.py", "    if before.by_period != after.by_period:\n        return True",
      "    if before.by_period != after.by_period:\n        return False", ("tests/test_policies.py",),
      "last N changed to daily/weekly/monthly (which may keep fewer) skips the two-person rule"),
    M("policy-reanchored-by-the-same-schedule", "bot/ops/policies.py", "    return same != said", "    return True",
      ("tests/test_policies.py",), "saying the same schedule again (the form does) moves its slots, so a run is lost"),
    M("policy-paused-slot-runs-late", "bot/ops/policies.py",
      "                    await self._pass_paused_slots(policy, datetime.fromtimestamp(policy.paused_until, UTC))\n", "",
      ("tests/test_policies.py",), "a slot inside a pause runs late when no round saw it in the pause"),
    M("policy-form-trusts-metadata", "bot/slack/policy_form.py", "            fields = parse_policy_form(*typed)",
      "            fields = json.loads(json.dumps({\"cadence\": \"hourly\", \"every_hours\": 5, \"at_time\": \"00:00\"}))",
      ("tests/test_policies.py",), "the form saves what its metadata says without parsing it again"),
]  # fmt: skip


def stale(mutants: list[Mutant], root: Path = ROOT, *, tests: bool = True) -> list[str]:
    """Why each mutant whose snippet is not found exactly once in its file is stale (empty: all fine);
    with `tests`, also a mutant whose test files are gone."""
    problems, names = [], set()
    for m in mutants:
        if m.name in names:
            problems.append(f"{m.name}: the name is used twice")
        names.add(m.name)
        file = root / m.path
        if not file.is_file():
            problems.append(f"{m.name}: {m.path} does not exist")
            continue
        count = file.read_text(encoding="utf-8").count(m.find)
        if count != 1:
            problems.append(f"{m.name}: its snippet occurs {count} times in {m.path}, not once")
        if m.find == m.replace:
            problems.append(f"{m.name}: the replacement is the snippet itself")
        missing = [t for t in m.tests if not (root / t.split("::")[0]).is_file()]
        if tests and missing:
            problems.append(f"{m.name}: no test file {', '.join(missing)}")
    return problems


def locate(mutant: Mutant, root: Path = ROOT) -> list[str]:
    """The files under bot/ that hold the mutant's snippet exactly once: where it went, when code moved."""
    found = []
    for file in sorted((root / "bot").rglob("*.py")):
        if file.read_text(encoding="utf-8").count(mutant.find) == 1:
            found.append(str(file.relative_to(root)))
    return found


def tracked_files(root: Path) -> list[str]:
    """What git knows or would (committed, staged, and new files not ignored): a new test counts before its commit."""
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    out = subprocess.run(command, cwd=root, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def copy_tree(root: Path, into: Path) -> Path:
    for rel in tracked_files(root):
        source = root / rel
        if source.is_file():
            target = into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


@dataclass
class Result:
    mutant: Mutant | None
    killed: bool
    seconds: float
    detail: str


class Runner:
    def __init__(self, base: Path, timeout: float, python: str):
        self.base, self.timeout, self.python = base, timeout, python
        self._stamps = itertools.count(int(time.time()) + 100_000)
        self._lock = threading.Lock()

    def environment(self, copy: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("PYTEST_ADDOPTS", None)
        return env

    def write(self, file: Path, text: str) -> None:
        """Write, and give the file a modification time it never had: Python's bytecode cache is keyed on
        it (in whole seconds), so a mutant is never run from the original's cache, nor the original from a mutant's."""
        file.write_text(text, encoding="utf-8")
        with self._lock:
            stamp = next(self._stamps)
        os.utime(file, (stamp, stamp))

    def run(self, copy: Path, mutant: Mutant | None, tests: tuple[str, ...]) -> Result:
        file = copy / mutant.path if mutant else None
        original = file.read_text(encoding="utf-8") if file else ""
        if file:
            self.write(file, original.replace(mutant.find, mutant.replace, 1))
        # tests/test_mutants.py would fail in any mutated copy (its snippet is gone): a kill that proves nothing
        ignore = f"--ignore={copy / 'tests' / 'test_mutants.py'}"
        command = [self.python, "-m", "pytest", "-x", "-p", "no:cacheprovider", "-n", "0", ignore, *tests]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, cwd=copy, env=self.environment(copy), capture_output=True, text=True,
                timeout=self.timeout,
            )  # fmt: skip
            killed, lines = done.returncode != 0, done.stdout.strip().splitlines()
            failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines if line.startswith("FAILED ")]
            detail = f"by {failed[0]}" if failed else (lines[-1] if lines else f"exit {done.returncode}")
            if done.returncode not in (0, 1):
                detail = f"exit {done.returncode}: {detail}"
        except subprocess.TimeoutExpired:
            killed, detail = True, f"timed out after {self.timeout:g} s"
        finally:
            if file:
                self.write(file, original)
        return Result(mutant, killed, time.monotonic() - started, detail)


def check_imports_the_copy(runner: Runner, copy: Path) -> None:
    """The copy's `bot` is the one imported (not an editable install of the working tree)."""
    probe = subprocess.run(
        [runner.python, "-c", "import bot, sys; sys.stdout.write(bot.__file__)"],
        cwd=copy, env=runner.environment(copy), capture_output=True, text=True,
    )  # fmt: skip
    if not probe.stdout.startswith(str(copy)):
        sys.exit(f"the copy's `bot` is not the one imported ({probe.stdout or probe.stderr.strip()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only mutants whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="only check that every snippet occurs once")
    parser.add_argument("--locate", action="store_true", help="where each stale snippet went")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once, each in its own copy (default 2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a mutant's tests may take")
    parser.add_argument("--tests", nargs="+", metavar="TEST", help="run these tests instead of each mutant's own")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the tests on the unchanged copy")
    parser.add_argument("--fail-under", type=float, default=0.0, metavar="PERCENT", help="exit 1 below this kill rate")
    args = parser.parse_args(argv)

    problems = stale(MUTANTS, tests=not args.tests)
    if args.locate:
        for m in MUTANTS:
            if stale([m], tests=False):
                where = locate(m)
                print(f"{m.name}: " + (f"now in {', '.join(where)}" if where else "found nowhere: rewrite its snippet"))
        return 2 if problems else 0
    if problems:
        print("The mutant list is stale (`--locate` says where snippets went):", *problems, sep="\n  ", file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args.only or any(word in m.name for word in args.only)]
    if args.list:
        for m in chosen:
            print(f"{m.name:42} {m.path:30} {m.what}")
        return 0
    if args.check:
        print(f"{len(MUTANTS)} mutants, every snippet found once")
        return 0
    if not chosen:
        print("no mutant matches", file=sys.stderr)
        return 2
    if args.tests:
        chosen = [dataclasses.replace(m, tests=tuple(args.tests)) for m in chosen]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the temporary copies are removed on the way out
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        base = Path(tmp)
        runner = Runner(base, args.timeout, sys.executable)
        jobs = max(1, min(args.jobs, len(chosen)))
        copies = [copy_tree(ROOT, base / f"copy{i}") for i in range(jobs)]
        check_imports_the_copy(runner, copies[0])
        if not args.no_baseline:
            every_test = tuple(sorted({t for m in chosen for t in m.tests}))
            print(f"baseline: {len(every_test)} test files on the unchanged tree …", flush=True)
            baseline = runner.run(copies[0], None, every_test)
            if baseline.killed:
                print(f"the tests fail without any mutant ({baseline.detail}): fix that first", file=sys.stderr)
                return 2
            print(f"baseline passes in {baseline.seconds:.0f} s ({baseline.detail})", flush=True)
        free = list(copies)

        def one(mutant: Mutant) -> Result:
            copy = free.pop()
            try:
                return runner.run(copy, mutant, mutant.tests)
            finally:
                free.append(copy)

        results: list[Result] = []
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for result in pool.map(one, chosen):
                results.append(result)
                m = result.mutant
                verdict = "killed  " if result.killed else "SURVIVED"
                print(f"{verdict} {result.seconds:5.1f}s  {m.name:42} {m.what}", flush=True)
                if result.killed:
                    print(f"         {result.detail}", flush=True)
                else:
                    print(f"         {m.path}: tests {' '.join(m.tests)} all passed", flush=True)

    killed = sum(r.killed for r in results)
    rate = 100.0 * killed / len(results)
    minutes, seconds = divmod(time.monotonic() - started, 60)
    print(f"\n{killed} of {len(results)} mutants killed ({rate:.0f} %), {len(results) - killed} survived; "
          f"{int(minutes)} min {seconds:.0f} s with {jobs} jobs")  # fmt: skip
    for r in results:
        if not r.killed:
            print(f"  survived: {r.mutant.name} ({r.mutant.path}) — {r.mutant.what}")
    return 1 if rate < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
