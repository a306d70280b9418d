"""Fixtures for the Carbon-compatibility suite.

The suite drives a real `carbide serve` process through the official `carbon-python-sdk==0.2.56`.
Contract with the binary (see tests/compat/README.md):

* binary from `$CARBIDE_BIN`, default `<repo>/target/debug/carbide`;
* `carbide org create --name NAME --json` (env `CARBIDE_DATA_DIR`) prints one JSON object with at
  least `id` (int) and `api_key` (str);
* `carbide serve` (env `CARBIDE_DATA_DIR`, `CARBIDE_LISTEN=127.0.0.1:0`) prints
  `carbide listening on http://127.0.0.1:PORT` on stdout once ready and exits 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compat_helpers import SENSITIVE, WebhookReceiver, new_customer_id

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_RE = re.compile(r"carbide listening on (http://127\.0\.0\.1:\d+)")
READY_TIMEOUT_S = 60
CLI_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
TEST_TIMEOUT_S = 120


def carbide_bin() -> Path:
    return Path(os.environ.get("CARBIDE_BIN", str(REPO_ROOT / "target" / "debug" / "carbide")))


@dataclass
class Org:
    id: int
    api_key: str
    name: str
    raw: dict


@dataclass
class Server:
    base_url: str
    data_dir: Path
    env: dict
    proc: subprocess.Popen
    stderr_path: Path
    stdout_lines: list = field(default_factory=list)
    orgs: list = field(default_factory=list)

    def stderr_tail(self, n: int = 40) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no stderr>"
        return "\n".join(lines[-n:])

    def assert_alive(self) -> None:
        rc = self.proc.poll()
        assert rc is None, (
            f"carbide serve exited unexpectedly with code {rc}; stderr tail:\n{self.stderr_tail()}"
        )

    def create_org(self, name: str | None = None) -> Org:
        """Runs `carbide org create` against the live data dir (server keeps running)."""
        org = run_org_create(self.env, name or f"compat-org-{uuid.uuid4().hex[:8]}")
        self.orgs.append(org)
        return org


def run_org_create(env: dict, name: str) -> Org:
    cmd = [str(carbide_bin()), "org", "create", "--name", name, "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 0, (
        f"`{' '.join(cmd)}` exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    obj = None
    text = proc.stdout.strip()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                    break
                except json.JSONDecodeError:
                    continue
    assert isinstance(obj, dict), f"`carbide org create --json` did not print a JSON object: {proc.stdout!r}"
    assert isinstance(obj.get("id"), int) and not isinstance(obj.get("id"), bool), (
        f"`org create --json` must print an integer `id`, got {obj!r}"
    )
    assert isinstance(obj.get("api_key"), str) and obj["api_key"], (
        f"`org create --json` must print a non-empty string `api_key`, got {obj!r}"
    )
    return Org(id=obj["id"], api_key=obj["api_key"], name=name, raw=obj)


@pytest.fixture(scope="session")
def server():
    binary = carbide_bin()
    if not binary.is_file():
        pytest.fail(
            f"carbide binary not found at {binary}; build it with `cargo build -p carbide` "
            "or set CARBIDE_BIN",
            pytrace=False,
        )
    data_dir = Path(tempfile.mkdtemp(prefix="carbide-compat-"))
    env = dict(os.environ)
    env["CARBIDE_DATA_DIR"] = str(data_dir)
    env["CARBIDE_LISTEN"] = "127.0.0.1:0"
    env.pop("CARBIDE_PUBLIC_URL", None)
    env.pop("CARBIDE_CONFIG", None)  # hermetic: only the variables set here configure the server
    # the embedding model is found relative to the repo root whatever pytest's working directory
    env.setdefault("CARBIDE_MODEL_DIR", str(REPO_ROOT / "models" / "all-MiniLM-L6-v2"))
    # test_files.py serves upload_file_from_url's files from a 127.0.0.1 http.server thread
    env.setdefault("CARBIDE_ALLOW_PRIVATE_URLS", "1")
    # verbose logs for our own crates, so the "no secrets in logs" check below means something
    env.setdefault("CARBIDE_LOG", "info,carbide=debug,carbide_api=debug,carbide_sync=debug,carbide_store=debug")

    # Org A is created before the server starts (the other orgs are created while it runs).
    org_a = run_org_create(env, "compat-org-a")

    stderr_path = data_dir / "serve.stderr.log"
    stderr_f = open(stderr_path, "wb")
    proc = subprocess.Popen(
        [str(binary), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr_f,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    stdout_lines: list[str] = []
    ready = threading.Event()
    found: dict = {}

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keeps draining so the pipe never blocks the server
            stdout_lines.append(line.rstrip("\n"))
            m = READY_RE.search(line)
            if m and not ready.is_set():
                found["url"] = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=pump, name="carbide-stdout", daemon=True).start()
    srv = Server(
        base_url="",
        data_dir=data_dir,
        env=env,
        proc=proc,
        stderr_path=stderr_path,
        stdout_lines=stdout_lines,
        orgs=[org_a],
    )
    if not ready.wait(READY_TIMEOUT_S) or "url" not in found:
        proc.kill()
        proc.wait()
        stderr_f.close()
        pytest.fail(
            f"carbide serve did not print 'carbide listening on http://127.0.0.1:PORT' within "
            f"{READY_TIMEOUT_S}s (exit code {proc.poll()}).\nstdout:\n"
            + "\n".join(stdout_lines)
            + f"\nstderr tail:\n{srv.stderr_tail()}",
            pytrace=False,
        )
    srv.base_url = found["url"]
    try:
        yield srv
    finally:
        rc = proc.poll()
        if rc is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                stderr_f.close()
                pytest.fail(f"carbide serve did not stop within {STOP_TIMEOUT_S}s of SIGTERM")
        stderr_f.close()
        assert rc == 0, (
            f"carbide serve must exit 0 on SIGTERM, exited {rc}; stderr tail:\n{srv.stderr_tail()}"
        )
        logs = srv.stderr_path.read_text(errors="replace") + "\n".join(stdout_lines)
        secrets = {o.api_key for o in srv.orgs} | SENSITIVE
        leaked = sorted(s[:6] + "…" for s in secrets if s and s in logs)
        assert not leaked, (
            f"{len(leaked)} secret(s) (API keys, access tokens, white-label secrets or webhook signing "
            f"keys) appear in carbide's logs ({srv.stderr_path}): {leaked}"
        )
        if not os.environ.get("CARBIDE_COMPAT_KEEP"):
            shutil.rmtree(data_dir, ignore_errors=True)  # kept for inspection whenever a check failed


@pytest.fixture(scope="session")
def base_url(server: Server) -> str:
    return server.base_url


@pytest.fixture(scope="session")
def org_a(server: Server) -> Org:
    """The org created before `serve` started."""
    return server.orgs[0]


@pytest.fixture(scope="session")
def org_b(server: Server) -> Org:
    """A second org, created with the CLI while `serve` is running."""
    return server.create_org("compat-org-b")


@pytest.fixture
def fresh_org(server: Server) -> Org:
    """A brand-new org per test (webhook limits, white labels and org settings are org-wide)."""
    return server.create_org()


@pytest.fixture
def new_org(server: Server):
    """Factory for extra orgs inside one test."""
    return server.create_org


@pytest.fixture(autouse=True)
def _watchdog():
    """The SDK sets no socket timeout: a hung server would hang the suite. Abort a test after
    TEST_TIMEOUT_S via SIGALRM (tests run in the main thread)."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_TIMEOUT_S}s (server hung or never answered?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _server_still_alive(request):
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").assert_alive()


@pytest.fixture
def cid() -> str:
    """A unique customer id for the current test."""
    return new_customer_id()


@pytest.fixture
def webhook_receiver():
    rx = WebhookReceiver()
    rx.start()
    try:
        yield rx
    finally:
        rx.stop()
