"""The pipeline HTTP API (bot/api.py), driven as a CI job drives it: HTTP requests against the bot's ASGI app,
the simulator as the backup API (slow, failing, full), the loopback Slack, the store on a real file.

The real `serve` process is driven the same way in test_server.py."""

import json
import threading
import time

import httpx
import pytest
from conftest import NOTIFY, LiveStack, poll_until

from bot.ops import Actor
from bot.sim.fake_api import BackupSimulator
from bot.store import SqliteStore

DEPLOY = "deploy-prod"


class Pipeline:
    """A CI job's view of the bot: its token, and calls that carry it."""

    def __init__(self, stack: LiveStack, name: str = DEPLOY, servers=(12345, 12346)):
        self.stack = stack
        self.token = stack.run(stack.runtime.ops.add_token(Actor.cli("admin"), name, frozenset(servers)))

    def headers(self, key: str | None = None, token: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return {**headers, "Idempotency-Key": key} if key else headers

    def post(self, body, *, key: str | None = None, wait: float | None = None, timeout: float = 15, **kw):
        query = f"?wait={wait:g}" if wait is not None else ""
        headers = {**self.headers(key), **kw.pop("headers", {})}
        data = {"content": body} if isinstance(body, bytes) else {"json": body}
        call = self.stack.http.client.post(f"/api/v1/backups{query}", headers=headers, **data, **kw)
        return self.stack.run(call, timeout=timeout)

    def get(self, run_id: str, *, wait: float | None = None, token: str | None = None, timeout: float = 15):
        query = f"?wait={wait:g}" if wait is not None else ""
        call = self.stack.http.client.get(f"/api/v1/runs/{run_id}{query}", headers=self.headers(token=token))
        return self.stack.run(call, timeout=timeout)


def audit(stack: LiveStack) -> list[tuple[str, str, str, str, str]]:
    store = SqliteStore(str(stack.db_path))
    try:
        return [(e.user_id, e.source, e.action, e.outcome, e.detail) for e in reversed(store.audit_entries(100))]
    finally:
        store.close()


def posts(stack: LiveStack) -> list[dict]:
    return stack.recorder.api("chat.postMessage")


@pytest.fixture
def quick(tmp_path):
    """Backups complete after a second and the follower looks twice a second."""
    sim = BackupSimulator(completion_seconds=1)
    live = LiveStack(tmp_path / "quick.db", sim, poll_seconds=0.5)
    yield live
    live.close()


def test_a_pipeline_takes_a_backup_waits_for_it_and_the_team_hears_who_and_how_long(quick):
    ci = Pipeline(quick)
    answer = ci.post({"server_id": 12345, "description": "Before deploy 2.4"}, wait=30, timeout=40)
    assert answer.status_code == 202
    run = answer.json()
    assert (run["status"], run["backup_id"], run["server_id"]) == ("completed", 5033, 12345)
    assert run["message"].startswith("backup #5033 of web-server-01 (12345): completed in ")
    assert run["finished_at"] and run["description"] == "Before deploy 2.4"
    again = ci.get(run["id"])
    assert again.status_code == 200 and again.json()["status"] == "completed"
    started, finished = quick.recorder.wait_for(lambda _r: len(posts(quick)) >= 2 and posts(quick)[:2])
    assert started["channel"] == finished["channel"] == NOTIFY
    assert started["text"] == (
        ":floppy_disk: *deploy-prod* (pipeline) took backup *#5033* of *web-server-01* (12345): “Before deploy 2.4”"
    )
    assert "taken by *deploy-prod* (pipeline), completed in " in finished["text"]
    assert "<@" not in started["text"] + finished["text"], "a token is named, never mentioned"
    (create,) = [row for row in audit(quick) if row[2] == "create"]
    assert create[:4] == ("token:deploy-prod", "token", "create", "done")
    assert create[4] == f"Before deploy 2.4 [pipeline {run['id']}]"
    assert quick.sim.count("POST", "/api/v1/backups") == 1


def test_without_wait_the_answer_is_at_once_and_the_run_is_followed_to_its_end(quick):
    ci = Pipeline(quick)
    run = ci.post({"server_id": 12346}).json()
    assert (run["status"], run["backup_id"]) == ("in_progress", 5033)
    assert ci.get(run["id"], wait=0).json()["status"] == "in_progress"
    assert ci.get(run["id"], wait=20, timeout=30).json()["status"] == "completed"


def test_a_backup_that_ends_failed_fails_the_run_and_its_alert_card_names_the_pipeline(quick):
    ci = Pipeline(quick)
    quick.sim.on_handled = lambda method, _path, _status: method == "POST" and quick.sim.end_with(5033, "failed")
    run = ci.post({"server_id": 12345}, wait=20, timeout=30).json()
    assert (run["status"], run["backup_id"]) == ("failed", 5033)
    assert "failed after" in run["message"] and "ended failed" in run["message"]
    loud = quick.recorder.wait_for(lambda _r: posts(quick)[1:])[0]
    assert "*Backup #5033 of web-server-01 (12345) FAILED*" in loud["text"]
    assert "Taken by *deploy-prod* (pipeline)" in loud["text"] and "<@" not in loud["text"]


def every_answer_is_json_with_a_message(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body.get("message"), str) and body["message"]
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (b"[12345]", "must be a JSON object"),
        (b"{}", "server_id is missing"),
        (b'{"server_id": "12345"}', "server_id must be a whole number"),
        (b'{"server_id": 12345.5}', "server_id must be a whole number"),
        (b'{"server_id": true}', "server_id must be a whole number"),
        (b'{"server_id": 0}', "server_id must be a whole number"),
        (b'{"server_id": 99999999999999999999999}', "server_id must be a whole number"),
        (b'{"server_id": 12345, "description": 7}', "description must be a string"),
        (json.dumps({"server_id": 12345, "description": "x" * 256}).encode(), "description is 256 characters"),
        (b'{"server_id": 12345, "descripton": "typo"}', "unknown field 'descripton'"),
    ],
)
def test_bad_input_is_400_says_what_to_send_and_is_audited(stack, body, words):
    ci = Pipeline(stack)
    answer = ci.post(body)
    assert answer.status_code == 400 and words in every_answer_is_json_with_a_message(answer)["message"]
    assert stack.sim.count("POST") == 0
    denied = [row for row in audit(stack) if row[2] == "create"]
    assert [row[:4] for row in denied] == [("token:deploy-prod", "token", "create", "denied")]
    assert denied[0][4].startswith("bad request: ")


def test_a_description_of_255_characters_is_taken_and_the_tag_still_fits(stack):
    ci = Pipeline(stack)
    run = ci.post({"server_id": 12345, "description": "é" * 255}).json()
    assert run["status"] == "in_progress" and run["description"] == "é" * 255
    (sent,) = [b for b in stack.run(stack.runtime.api.list_backups(12345, "manual")) if b.id == run["backup_id"]]
    assert len(sent.description) == 255 and sent.description.endswith(f"… [pipeline {run['id']}]")


@pytest.mark.parametrize(
    ("query", "key", "words"),
    [
        ("?wait=901", None, "wait must be a number of seconds from 0 to 900"),
        ("?wait=-1", None, "wait must be"),
        ("?wait=soon", None, "wait must be"),
        ("", "has spaces", "Idempotency-Key must be 1 to 255 visible ASCII"),
        ("", "k" * 256, "Idempotency-Key must be"),
    ],
)
def test_a_bad_wait_or_idempotency_key_is_400(stack, query, key, words):
    ci = Pipeline(stack)
    headers = ci.headers(key)
    answer = stack.run(stack.http.client.post(f"/api/v1/backups{query}", json={"server_id": 12345}, headers=headers))
    assert answer.status_code == 400 and words in every_answer_is_json_with_a_message(answer)["message"]
    assert stack.sim.count("POST") == 0


def test_bad_revoked_and_missing_tokens_are_401(stack):
    ci = Pipeline(stack)
    other = Pipeline(stack, "staging", servers=(12347,))
    forged = ci.token[:-4] + ("AAAA" if not ci.token.endswith("AAAA") else "BBBB")
    for headers in (
        {},
        {"Authorization": ci.token},
        {"Authorization": f"Basic {ci.token}"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer vbb_nonsense"},
        {"Authorization": f"Bearer {forged}"},
    ):
        call = stack.http.client.post("/api/v1/backups", json={"server_id": 12345}, headers=headers)
        answer = stack.run(call)
        assert answer.status_code == 401, headers
        assert answer.headers["www-authenticate"].startswith("Bearer")
        every_answer_is_json_with_a_message(answer)
    assert stack.run(ops_revoke(stack, "staging"))
    revoked = stack.run(stack.http.client.post("/api/v1/backups", json={"server_id": 12347}, headers=other.headers()))
    assert revoked.status_code == 401 and "this token was revoked" in revoked.json()["message"]
    assert stack.sim.count("POST") == 0
    assert ("token:staging", "token", "create", "denied", "the token was revoked") in audit(stack)
    assert not [row for row in audit(stack) if row[0] == "token:deploy-prod"], "a forged token names no one"


def ops_revoke(stack: LiveStack, name: str):
    return stack.runtime.ops.revoke_token(Actor.cli("admin"), name)


def test_a_server_the_token_does_not_reach_is_403_and_audited(stack):
    ci = Pipeline(stack, servers=(12345,))
    answer = ci.post({"server_id": 12346})
    assert answer.status_code == 403
    assert every_answer_is_json_with_a_message(answer)["message"] == "this token does not reach server 12346"
    assert stack.sim.count("POST") == 0
    assert ("token:deploy-prod", "token", "create", "denied", "the token reaches only 12345") in audit(stack)


def test_no_room_is_409_naming_the_oldest_manual_backup_and_the_team_hears_it(stack):
    for n in range(2):
        stack.sim.add_backup(12346, description=f"filler {n}")  # 10 of 10
    ci = Pipeline(stack)
    answer = ci.post({"server_id": 12346, "description": "Before the migration"}, key="build-41")
    body = every_answer_is_json_with_a_message(answer)
    assert answer.status_code == 409 and body["status"] == "failed" and body["backup_id"] is None
    assert body["oldest_manual_backup"]["id"] == 5024
    assert body["oldest_manual_backup"]["description"] == "Before schema migration 1"
    assert "already has 10 of 10 manual backups" in body["message"] and "#5024" in body["message"]
    assert ci.post({"server_id": 12346, "description": "Before the migration"}, key="build-41").status_code == 409
    assert ci.get(body["id"]).json()["oldest_manual_backup"]["id"] == 5024
    told = stack.recorder.wait_for(lambda _r: posts(stack))[0]["text"]
    assert "*deploy-prod* (pipeline) could not take a backup of" in told and "*#5024*" in told
    assert stack.sim.count("POST", "/api/v1/backups") == 1, "the repeated key sent nothing"


def test_an_api_refusal_is_502_and_nothing_was_created(stack):
    ci = Pipeline(stack)
    stack.sim.fail_next(1, 404, method="POST")
    answer = ci.post({"server_id": 12345})
    body = every_answer_is_json_with_a_message(answer)
    assert answer.status_code == 502 and (body["status"], body["backup_id"]) == ("failed", None)
    assert body["message"].startswith("no backup of ")
    assert body["message"].endswith("was created: the backup API does not know server 12345 (404)")
    told = stack.recorder.wait_for(lambda _r: posts(stack))[0]["text"]
    assert "could not take a backup of " in told and ": none was created (“the backup API does not know" in told


def test_a_create_the_api_did_not_confirm_is_unknown_never_not_done(stack):
    ci = Pipeline(stack)
    stack.sim.fail_next(1, 503, method="POST")  # not acted on: it was not created, but the bot cannot know
    body = every_answer_is_json_with_a_message(ci.post({"server_id": 12345}))
    assert (body["status"], body["backup_id"]) == ("unknown", None)
    assert "outcome unknown" in body["message"] and "It may have been created" in body["message"]
    told = stack.recorder.wait_for(lambda _r: posts(stack))[0]["text"]
    assert "may have been created: the backup API did not confirm it" in told
    create = [row for row in audit(stack) if row[2] == "create"]
    assert create[0][3] == "failed" and "outcome unknown, it may have happened" in create[0][4]


def test_a_create_that_happened_though_the_api_failed_is_found_by_its_tag(stack):
    ci = Pipeline(stack)
    stack.sim.act_then_fail_next(1, 502, method="POST")  # created, then answered 502
    run = ci.post({"server_id": 12345, "description": "v2.4"}).json()
    assert (run["status"], run["backup_id"]) == ("in_progress", 5033), "looked for at once, and found"
    told = stack.recorder.wait_for(lambda _r: posts(stack))[0]["text"]
    assert "took backup *#5033*" in told
    sent, found = [row[3:] for row in audit(stack) if row[2] == "create"]
    assert sent[0] == "failed" and "outcome unknown, it may have happened" in sent[1]
    assert found == ("done", f"found by its tag: the create the backup API did not confirm happened (run {run['id']})")


def test_a_slow_api_answers_slowly_but_other_requests_are_not_held_up(tmp_path):
    sim = BackupSimulator(completion_seconds=3600, latency=1.5)
    stack = LiveStack(tmp_path / "slow.db", sim, api_options={"timeout": 5.0})
    try:
        ci = Pipeline(stack)
        results = {}
        slow = threading.Thread(target=lambda: results.update(slow=ci.post({"server_id": 12345}, wait=3)))
        slow.start()
        time.sleep(0.3)
        began = time.monotonic()
        assert stack.http.get("/healthz").status_code == 200
        assert ci.get("0123456789ab").status_code == 404
        assert time.monotonic() - began < 1.0, "a waiting call holds up nothing"
        slow.join(20)
        answer = results["slow"]
        assert answer.status_code == 202 and answer.json()["status"] == "in_progress"
    finally:
        stack.close()


def test_two_concurrent_calls_with_one_key_take_one_backup(tmp_path):
    sim = BackupSimulator(completion_seconds=3600, latency=0.5)  # the first is still sending when the second comes
    stack = LiveStack(tmp_path / "twice.db", sim)
    try:
        ci = Pipeline(stack)
        answers, start = [], threading.Barrier(2)

        def call():
            start.wait()
            answers.append(ci.post({"server_id": 12345, "description": "deploy 812"}, key="pipeline-812"))

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert [a.status_code for a in answers] == [202, 202]
        first, second = (a.json() for a in answers)
        assert first["id"] == second["id"] and first["backup_id"] == second["backup_id"] == 5033
        assert sim.count("POST", "/api/v1/backups") == 1
        rows = [row[3] for row in audit(stack) if row[2] == "create"]
        assert sorted(rows) == ["cancelled", "done"], "both calls audited; the repeat took no backup"
        posts_now = stack.recorder.wait_for(lambda _r: posts(stack))
        time.sleep(0.3)
        assert len(posts(stack)) == len(posts_now) == 1, "the team hears of one backup"
    finally:
        stack.close()


def test_the_same_key_with_another_request_is_422_and_a_key_is_per_token(stack):
    ci, other = Pipeline(stack), Pipeline(stack, "deploy-staging")
    first = ci.post({"server_id": 12345, "description": "a"}, key="k-1").json()
    reused = ci.post({"server_id": 12345, "description": "b"}, key="k-1")
    assert reused.status_code == 422
    assert first["id"] in every_answer_is_json_with_a_message(reused)["message"]
    theirs = other.post({"server_id": 12345, "description": "b"}, key="k-1").json()
    assert theirs["id"] != first["id"] and theirs["backup_id"] == 5034, "another token's key is its own"
    assert stack.sim.count("POST", "/api/v1/backups") == 2


def test_a_run_is_seen_only_by_its_own_token_and_unknown_paths_are_404(stack):
    ci, other = Pipeline(stack), Pipeline(stack, "other")
    run = ci.post({"server_id": 12345}).json()
    assert ci.get(run["id"]).status_code == 200
    assert other.get(run["id"]).status_code == 404
    assert every_answer_is_json_with_a_message(ci.get("../../etc"))
    for path, method, status in (
        ("/api/v1/nothing", "GET", 404),
        ("/api/v2/backups", "POST", 404),
        ("/api/v1/backups", "GET", 405),
        (f"/api/v1/runs/{run['id']}", "DELETE", 405),
    ):
        answer = stack.run(stack.http.client.request(method, path, headers=ci.headers()))
        assert answer.status_code == status, path
        every_answer_is_json_with_a_message(answer)


def test_an_oversized_body_is_413_whether_it_says_so_or_not(stack):
    ci = Pipeline(stack)
    big = json.dumps({"server_id": 12345, "description": "x" * 20000}).encode()
    assert ci.post(big).status_code == 413

    async def chunks():
        for _ in range(20):
            yield b" " * 1024  # no Content-Length: the body is counted as it comes

    answer = ci.post(None, content=chunks())
    assert answer.status_code == 413
    assert "larger than 16384 bytes" in every_answer_is_json_with_a_message(answer)["message"]
    assert stack.sim.count("POST") == 0
    refused = [row for row in audit(stack) if row[2] == "create"]
    assert [row[3] for row in refused] == ["denied", "denied"] and "larger than 16384 bytes" in refused[0][4]


def test_a_bound_servers_channels_hear_of_it_and_the_token_is_not_held_to_them(stack):
    stack.ask("channels 12345 add CPRODOPS")
    ci = Pipeline(stack)
    run = ci.post({"server_id": 12345}).json()
    assert run["status"] == "in_progress", "a token may back up a bound server"
    told = stack.recorder.wait_for(lambda _r: [p for p in posts(stack) if "took backup" in p["text"]])
    assert [p["channel"] for p in told] == ["CPRODOPS"]


def test_a_shutdown_answers_waiting_calls_at_once_and_takes_no_new_run(stack):
    ci = Pipeline(stack)
    run = ci.post({"server_id": 12345}).json()
    results = {}
    waiting = threading.Thread(target=lambda: results.update(answer=ci.get(run["id"], wait=600, timeout=30)))
    waiting.start()
    time.sleep(0.5)
    began = time.monotonic()
    stack.asgi.draining = True
    waiting.join(10)
    assert time.monotonic() - began < 3 and results["answer"].json()["status"] == "in_progress"
    refused = ci.post({"server_id": 12345})
    assert refused.status_code == 503 and "shutting down" in refused.json()["message"]
    stack.asgi.draining = False


def test_the_token_never_reaches_the_store_a_log_line_or_slack(tmp_path, caplog):
    caplog.set_level("DEBUG")
    sim = BackupSimulator(completion_seconds=1)
    stack = LiveStack(tmp_path / "secret.db", sim, poll_seconds=0.5)
    try:
        ci = Pipeline(stack)
        ci.post({"server_id": 12345, "description": "with the token"}, wait=10, timeout=20)
        ci.post({"server_id": 12347})  # 403
        ci.post(b"nonsense")  # 400
        stack.sim.fail_next(1, 503, method="POST")
        ci.post({"server_id": 12346})  # unknown
        stack.run(stack.http.client.post("/api/v1/backups", json={}, headers={"Authorization": f"Bearer {ci.token}x"}))
        stack.run(ops_revoke(stack, DEPLOY))
        ci.post({"server_id": 12345})  # revoked
        poll_until(lambda: len(posts(stack)) >= 3)
        secret = ci.token.split("_", 2)[2]
    finally:
        stack.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("secret.db*"))
    assert stored and ci.token.encode() not in stored and secret.encode() not in stored
    assert ci.token not in caplog.text and secret not in caplog.text
    slack = json.dumps([record.data for record in stack.recorder.all()])
    assert posts(stack) and ci.token not in slack and secret not in slack
