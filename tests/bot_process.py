"""`vps-backup-bot <argv>` as a real process of its own, started without paying for its imports each time.

The installed script spends about a second importing Bolt, aiohttp, sqlite-utils and the rest before it
does anything, and the process tests start some twenty bots. These are forked instead from a server that
imported all that once (multiprocessing's forkserver): each bot is still its own process, with the
environment, working directory, output and signals a test gives it, running the same `main(argv)` the
script runs, and exiting with its status (or -N when killed by signal N, as `subprocess.Popen` says).
The script itself is still started as a person runs it by test_cli, test_console and test_server's
`test_the_real_serve_process`.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping

import bot.__main__
import bot.server

_forks = multiprocessing.get_context("forkserver")
# The fork server imports these once. Only installed modules: it does not see the tests' sys.path (a module
# it cannot import is skipped silently). "pytest": each new process runs the parent's main script again,
# which under pytest only imports pytest.
_forks.set_forkserver_preload(["bot.__main__", "bot.server", "pytest"])


def _run(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the new process: take the test's environment, directory and output files, then run the command."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["vps-backup-bot", *argv]
    sys.exit(bot.__main__.main(argv))


class BotProcess:
    """The parts of `subprocess.Popen` the tests use, for one bot process; stderr goes to stdout unless kept apart."""

    def __init__(self, argv: list[str], *, env: Mapping[str, str], cwd: os.PathLike | str, stderr_apart: bool = False):
        self.args = ["vps-backup-bot", *argv]
        # In the run's shared directory, which conftest removes at the end, whether or not communicate() is called.
        self._dir = tempfile.mkdtemp(prefix="bot-process-", dir=os.environ.get("BACKUPBOT_TEST_SHARED_DIR"))
        self._out = os.path.join(self._dir, "stdout")
        self._err = os.path.join(self._dir, "stderr") if stderr_apart else self._out
        self._process = _forks.Process(target=_run, args=(list(argv), dict(env), os.fspath(cwd), self._out, self._err))
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        """Wait for the process to end; returns what it wrote (stdout, and stderr if kept apart)."""
        self.wait(timeout)
        out = _read(self._out)
        err = _read(self._err) if self._err != self._out else None
        shutil.rmtree(self._dir, ignore_errors=True)
        return out, err


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def run_bot(argv: list[str], *, env: Mapping[str, str], cwd: os.PathLike | str, timeout: float = 60):
    """Run a bot command to its end, like `subprocess.run(..., capture_output=True, text=True)`."""
    process = BotProcess(argv, env=env, cwd=cwd, stderr_apart=True)
    out, err = process.communicate(timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
