"""Conformance suite: the official `dropbox` Python SDK against the emulator over HTTPS.

The emulator binary is located via DROPBOX_EMULATOR_BIN (default
target/debug/dropbox-emulator under the repository root), started with a self-signed
certificate, and the SDK is pointed at it through its host environment variables, which
it reads at import time — so they are set in pytest_configure, before any test module
imports `dropbox`.
"""

import base64
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_KEY = "conformance-app"
APP_SECRET = "conformance-secret"
REDIRECT_URI = "http://localhost:8799/dropbox/callback"

_EMU = {}


def _start_emulator():
    binary = os.environ.get("DROPBOX_EMULATOR_BIN", str(REPO_ROOT / "target" / "debug" / "dropbox-emulator"))
    if not Path(binary).exists():
        raise RuntimeError(f"emulator binary not found at {binary}; run `cargo build -p dropbox-emulator`")
    tmp = tempfile.mkdtemp(prefix="dbx-conformance-")
    pem = os.path.join(tmp, "emulator.pem")
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--tls", "--tls-cert-out", pem],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(tmp, "emulator.log"), "w"),
        text=True,
    )
    line = proc.stdout.readline().strip()
    prefix = "dropbox-emulator listening on "
    if not line.startswith(prefix):
        proc.kill()
        raise RuntimeError(f"unexpected emulator output: {line!r}")
    base_url = line[len(prefix):]
    # Keep draining stdout so the pipe never fills.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, base_url, pem


def pytest_configure(config):
    proc, base_url, pem = _start_emulator()
    hostport = base_url.split("://", 1)[1]
    for var in ("DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST", "DROPBOX_API_NOTIFY_HOST", "DROPBOX_WEB_HOST"):
        os.environ[var] = hostport
    _EMU.update(proc=proc, base_url=base_url, pem=pem, hostport=hostport)


def pytest_unconfigure(config):
    proc = _EMU.get("proc")
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


class Emulator:
    """Thin client for the emulator's admin API plus SDK factories."""

    def __init__(self, base_url, pem):
        self.base_url = base_url
        self.pem = pem
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = pem

    def admin(self, route, body=None):
        resp = self.http.post(f"{self.base_url}/__admin/{route}", json=body or {})
        assert resp.status_code == 200, (route, resp.status_code, resp.text)
        assert resp.headers["Content-Type"] == "application/json"
        return resp.json()

    def account(self, email="ada@example.com", **extra):
        return self.admin("accounts", {"email": email, "given_name": "Ada", "surname": "Lane", **extra})

    def token(self, account_id, offline=False, **extra):
        return self.admin("tokens", {"app_key": APP_KEY, "account_id": account_id, "offline": offline, **extra})

    def put(self, account_id, path, data, **extra):
        if isinstance(data, str):
            data = data.encode()
        return self.admin(
            "files",
            {"account_id": account_id, "path": path, "content_b64": base64.b64encode(data).decode(), **extra},
        )

    def session(self):
        import dropbox

        s = dropbox.create_session(ca_certs=self.pem)
        s.trust_env = False
        return s

    def client(self, access_token=None, **kwargs):
        import dropbox

        kwargs.setdefault("max_retries_on_rate_limit", 0)
        kwargs.setdefault("max_retries_on_error", 0)
        return dropbox.Dropbox(oauth2_access_token=access_token, session=self.session(), **kwargs)

    def user_client(self, email="ada@example.com", **account_extra):
        acct = self.account(email, **account_extra)
        tok = self.token(acct["account_id"])
        return acct, self.client(tok["access_token"])


@pytest.fixture(scope="session")
def emu_session():
    return Emulator(_EMU["base_url"], _EMU["pem"])


@pytest.fixture
def emu(emu_session):
    emu_session.admin("reset")
    emu_session.admin(
        "apps",
        {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "redirect_uris": [REDIRECT_URI],
            "scopes": ["account_info.read", "files.metadata.read", "files.content.read"],
        },
    )
    return emu_session


def dumps(v):
    return json.dumps(v)
