"""Dropbox connect flow through the official SDK (validate=True): get_oauth_url, the Dropbox
redirect, query_user_data_sources / query, sync_data_source_items, list_data_source_items, cancel,
add_tags / remove_tags, revoke_access_token, and the ADD / DATA_SOURCE_READY / CANCEL / REVOKE
webhooks (§4, §9, §11).

This module runs its own carbide instance (the session server has no Dropbox) pointed at the
Dropbox emulator binary over HTTPS: `CARBIDE_DROPBOX_URL` = the emulator, `CARBIDE_DROPBOX_CA_CERT`
= the certificate it writes, and a server-wide app (`CARBIDE_DROPBOX_APP_KEY/_SECRET`) registered
in the emulator with carbide's redirect URI.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from compat_helpers import (
    CLIENT_ERRORS,
    customer_client,
    expect_api_error,
    org_client,
    poll,
    remember_secret,
)
from conftest import READY_TIMEOUT_S, REPO_ROOT, STOP_TIMEOUT_S, carbide_bin, run_org_create

APP_KEY = "compat-dropbox-app"
APP_SECRET = remember_secret("compat-dropbox-secret-" + uuid.uuid4().hex)
EMU_READY_RE = re.compile(r"dropbox-emulator listening on (https?://127\.0\.0\.1:\d+)")
CARBIDE_READY_RE = re.compile(r"carbide listening on (http://127\.0\.0\.1:\d+)")


def emulator_bin() -> Path:
    return Path(os.environ.get("DROPBOX_EMULATOR_BIN", str(REPO_ROOT / "target" / "debug" / "dropbox-emulator")))


def _start(cmd: list[str], env: dict, ready_re: re.Pattern, stderr_path: Path):
    stderr_f = open(stderr_path, "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr_f, stdin=subprocess.DEVNULL, text=True)
    found: dict = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = ready_re.search(line)
            if m and not ready.is_set():
                found["url"] = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(READY_TIMEOUT_S) or "url" not in found:
        proc.kill()
        proc.wait()
        stderr_f.close()
        pytest.fail(f"{cmd[0]} did not become ready; stderr:\n{stderr_path.read_text(errors='replace')[-3000:]}")
    return proc, stderr_f, found["url"]


@dataclass
class DropboxEnv:
    base_url: str
    emu_url: str
    ca_cert: str
    api_key: str
    org_id: int

    def admin(self, route: str, body: dict) -> dict:
        r = requests.post(f"{self.emu_url}/__admin/{route}", json=body, verify=self.ca_cert, timeout=30)
        assert r.status_code == 200, f"emulator admin {route}: {r.status_code} {r.text}"
        return r.json()

    def account(self, email: str, team: str | None = None) -> dict:
        body: dict = {"email": email}
        if team:
            body["team"] = {"name": team}
            body["account_type"] = "business"
        return self.admin("accounts", body)

    def put(self, account_id: str, path: str, content: bytes) -> None:
        self.admin("files", {"account_id": account_id, "path": path, "content_b64": base64.b64encode(content).decode()})

    def approve_and_return(self, account_id: str, oauth_url: str) -> dict:
        """"Allow" in the emulator, then follow Dropbox's redirect back to carbide (JSON answer)."""
        approved = self.admin("oauth/approve", {"account_id": account_id, "authorize_url": oauth_url})
        to = approved["redirect_to"]
        assert to.startswith(f"{self.base_url}/integrations/dropbox?"), to
        r = requests.get(to + "&format=json", timeout=60)
        assert r.status_code == 200, f"callback: {r.status_code} {r.text}"
        return r.json()


@pytest.fixture(scope="module")
def dropbox_env():
    for b in (carbide_bin(), emulator_bin()):
        if not b.is_file():
            pytest.fail(f"{b} not found; build it with `cargo build -p carbide -p dropbox-emulator`", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="carbide-compat-dropbox-"))
    ca = work / "emulator-ca.pem"
    emu, emu_err, emu_url = _start(
        [str(emulator_bin()), "--listen", "127.0.0.1:0", "--tls", "--tls-cert-out", str(ca)],
        dict(os.environ),
        EMU_READY_RE,
        work / "emulator.stderr.log",
    )
    env = dict(os.environ)
    env.update(
        CARBIDE_DATA_DIR=str(work / "data"),
        CARBIDE_LISTEN="127.0.0.1:0",
        CARBIDE_DROPBOX_URL=emu_url,
        CARBIDE_DROPBOX_CA_CERT=str(ca),
        CARBIDE_DROPBOX_APP_KEY=APP_KEY,
        CARBIDE_DROPBOX_APP_SECRET=APP_SECRET,
    )
    env.pop("CARBIDE_PUBLIC_URL", None)
    env.pop("CARBIDE_CONFIG", None)
    env.setdefault("CARBIDE_LOG", "info,carbide_api=debug,carbide_sync=debug,carbide_store=debug")
    org = run_org_create(env, "compat-dropbox-org")
    remember_secret(org.api_key)
    proc, err_f, base_url = _start([str(carbide_bin()), "serve"], env, CARBIDE_READY_RE, work / "serve.stderr.log")
    try:
        r = requests.post(
            f"{emu_url}/__admin/apps",
            json={"app_key": APP_KEY, "app_secret": APP_SECRET, "redirect_uris": [f"{base_url}/integrations/dropbox"]},
            verify=str(ca),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        yield DropboxEnv(base_url=base_url, emu_url=emu_url, ca_cert=str(ca), api_key=org.api_key, org_id=org.id)
    finally:
        rc = proc.poll()
        if rc is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err_f.close()
        emu.kill()
        emu.wait()
        emu_err.close()
        logs = (work / "serve.stderr.log").read_text(errors="replace")
        assert rc == 0, f"carbide serve exited {rc}; stderr tail:\n{logs[-3000:]}"
        for secret in (APP_SECRET, org.api_key):
            assert secret not in logs, "a secret reached carbide's log"
        if not os.environ.get("CARBIDE_COMPAT_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _connect(env: DropboxEnv, cc, account_id: str, **kwargs) -> dict:
    resp = cc.integrations.get_oauth_url(service="DROPBOX", validate=True, **kwargs)
    q = parse_qs(urlsplit(resp.oauth_url).query)
    assert resp.oauth_url.startswith(f"{env.emu_url}/oauth2/authorize?")
    assert q["client_id"] == [APP_KEY]
    assert q["redirect_uri"] == [f"{env.base_url}/integrations/dropbox"]
    assert q["token_access_type"] == ["offline"]
    out = env.approve_and_return(account_id, resp.oauth_url)
    assert out["status"] == "connected", out
    return out


def _wait_listed(cc, ds_id: int):
    def done():
        r = cc.data_sources.query_user_data_sources(filters={"ids": [ds_id]}, validate=True)
        ds = r.results[0]
        return ds if ds.sync_status in ("READY", "SYNC_ERROR") and ds.source_items_synced_at is not None else None

    return poll(done, f"item listing of data source {ds_id}")


def test_connect_list_tag_and_revoke_through_sdk(dropbox_env: DropboxEnv, webhook_receiver):
    env = dropbox_env
    oc = org_client(env.base_url, env.api_key)
    remember_secret(oc.webhooks.add_url(url=webhook_receiver.url, validate=True).signing_key)
    cid = f"compat-dbx-{uuid.uuid4().hex[:8]}"
    cc = customer_client(env.base_url, env.api_key, cid)
    acct = env.account(f"{cid}@example.com")
    aid = acct["account_id"]
    env.put(aid, "/Reports/q1.pdf", b"%PDF-1.4 quarterly")
    env.put(aid, "/Reports/2024/notes.txt", b"notes")
    env.put(aid, "/readme.md", b"# hi")

    out = _connect(env, cc, aid, request_id="compat-req", data_source_tags={"tier": "gold"})
    ds_id = out["data_source_id"]
    webhook_receiver.wait_for(
        lambda e: e["inner"]["webhook_type"] == "ADD" and e["inner"]["obj"]["object_id"] == str(ds_id), "ADD"
    )

    r = cc.data_sources.query_user_data_sources(validate=True)
    assert r.count == 1
    ds = r.results[0]
    assert ds.id == ds_id and ds.data_source_type == "DROPBOX" and ds.data_source_external_id == aid
    assert ds.revoked_access is False and ds.last_sync_action == "ADD"
    assert ds.tags == {"tier": "gold"}
    assert ds.token in (None, {})
    assert ds.organization_supplied_user_id == cid

    ds = _wait_listed(cc, ds_id)
    assert ds.sync_status == "READY"
    webhook_receiver.wait_for(lambda e: e["inner"]["webhook_type"] == "DATA_SOURCE_READY", "DATA_SOURCE_READY")

    items = cc.integrations.list_data_source_items(data_source_id=ds_id, validate=True)
    assert items.count == 2
    assert [i.name for i in items.items] == ["readme.md", "Reports"]  # case-insensitive name order
    reports = next(i for i in items.items if i.name == "Reports")
    assert reports.item_type == "FOLDER" and reports.is_expandable is True and reports.source == "DROPBOX"
    kids = cc.integrations.list_data_source_items(
        data_source_id=ds_id, parent_id=reports.external_id, order_by="directories_first", validate=True
    )
    assert [i.name for i in kids.items] == ["2024", "q1.pdf"]
    pdf = kids.items[1]
    assert pdf.file_format == "PDF" and pdf.is_selectable is True
    assert pdf.parent_external_id == reports.external_id
    assert pdf.organization_user_data_source_id == ds_id
    found = cc.integrations.list_data_source_items(
        data_source_id=ds_id, filters={"name": "notes", "item_types": ["FILE"]}, validate=True
    )
    assert [i.name for i in found.items] == ["notes.txt"]
    page = cc.integrations.list_data_source_items(
        data_source_id=ds_id, pagination={"limit": 1}, order_by="name", order_dir="desc", validate=True
    )
    assert page.count == 2 and [i.name for i in page.items] == ["Reports"]

    # re-list after a change
    env.put(aid, "/later.csv", b"a,b\n")
    ds = cc.integrations.sync_data_source_items(data_source_id=ds_id, validate=True)
    assert ds.id == ds_id
    poll(
        lambda: "later.csv" in [i.name for i in cc.integrations.list_data_source_items(data_source_id=ds_id, validate=True).items],
        "later.csv listed",
    )
    _wait_listed(cc, ds_id)
    ds = cc.integrations.cancel(data_source_id=ds_id, validate=True)
    assert ds.id == ds_id

    ds = cc.data_sources.add_tags(data_source_id=ds_id, tags={"env": "prod"}, validate=True)
    assert ds.tags == {"tier": "gold", "env": "prod"}
    r = cc.data_sources.query_user_data_sources(
        filters={"tags": {"AND": [{"key": "env", "value": "prod"}]}}, validate=True
    )
    assert r.count == 1
    ds = cc.data_sources.remove_tags(data_source_id=ds_id, tags_to_remove=["tier"], validate=True)
    assert ds.tags == {"env": "prod"}
    ds = cc.data_sources.remove_tags(data_source_id=ds_id, remove_all_tags=True, validate=True)
    assert ds.tags == {}

    org_view = oc.data_sources.query(filters={"ids": [ds_id]}, validate=True)
    assert org_view.count == 1 and org_view.results[0].organization_supplied_user_id == cid

    ok = cc.data_sources.revoke_access_token(data_source_id=ds_id, validate=True)
    assert ok.success is True
    webhook_receiver.wait_for(
        lambda e: e["inner"]["webhook_type"] == "REVOKE" and e["inner"]["obj"]["object_id"] == str(ds_id), "REVOKE"
    )
    r = cc.data_sources.query_user_data_sources(filters={"revoked_access": True}, validate=True)
    assert [d.id for d in r.results] == [ds_id]
    assert r.results[0].last_sync_action == "REVOKE"
    expect_api_error(lambda: cc.integrations.sync_data_source_items(data_source_id=ds_id), CLIENT_ERRORS, "sync revoked")

    # reconnecting the same Dropbox account brings the same data source back
    out = _connect(env, cc, aid, connecting_new_account=True)
    assert out["data_source_id"] == ds_id and out["created"] is False
    ds = cc.data_sources.query_user_data_sources(filters={"ids": [ds_id]}, validate=True).results[0]
    assert ds.revoked_access is False


def test_team_folders_and_tenancy(dropbox_env: DropboxEnv):
    env = dropbox_env
    a = customer_client(env.base_url, env.api_key, f"compat-dbx-a-{uuid.uuid4().hex[:6]}")
    b = customer_client(env.base_url, env.api_key, f"compat-dbx-b-{uuid.uuid4().hex[:6]}")
    team = env.account(f"t-{uuid.uuid4().hex[:6]}@corp.example", team=f"Corp {uuid.uuid4().hex[:4]}")
    env.put(team["account_id"], f"ns:{team['root_namespace_id']}/Shared Plans/plan.docx", b"PK plan")
    env.put(team["account_id"], "/own.txt", b"own")
    ds_a = _connect(env, a, team["account_id"])["data_source_id"]
    _wait_listed(a, ds_a)
    names = [i.name for i in a.integrations.list_data_source_items(data_source_id=ds_a, validate=True).items]
    assert "Shared Plans" in names, names

    other = env.account(f"o-{uuid.uuid4().hex[:6]}@example.com")
    ds_b = _connect(env, b, other["account_id"])["data_source_id"]
    assert [d.id for d in b.data_sources.query_user_data_sources(validate=True).results] == [ds_b]
    assert [d.id for d in a.data_sources.query_user_data_sources(validate=True).results] == [ds_a]
    expect_api_error(lambda: b.integrations.list_data_source_items(data_source_id=ds_a), [404], "foreign items")
    expect_api_error(lambda: b.data_sources.revoke_access_token(data_source_id=ds_a), [404], "foreign revoke")
    expect_api_error(lambda: b.data_sources.add_tags(data_source_id=ds_a, tags={"x": "y"}), [404], "foreign tags")


def test_unsupported_service_and_bad_state(dropbox_env: DropboxEnv):
    env = dropbox_env
    cc = customer_client(env.base_url, env.api_key, f"compat-dbx-c-{uuid.uuid4().hex[:6]}")
    err = expect_api_error(lambda: cc.integrations.get_oauth_url(service="GOOGLE_DRIVE"), [400], "GOOGLE_DRIVE")
    assert "not supported" in str(err.body)
    r = requests.get(f"{env.base_url}/integrations/dropbox?code=x&state=bogus", timeout=30)
    assert r.status_code == 400 and "text/html" in r.headers["content-type"]
    assert "start the connection again" in r.text
    r = requests.get(f"{env.base_url}/integrations/dropbox?code=x&state=bogus&format=json", timeout=30)
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)


def test_connect_data_source_with_own_tokens(dropbox_env: DropboxEnv):
    """`integrations.connect_data_source`: tokens from the organization's own OAuth flow."""
    env = dropbox_env
    cid = f"compat-dbx-ext-{uuid.uuid4().hex[:8]}"
    cc = customer_client(env.base_url, env.api_key, cid)
    acct = env.account(f"{cid}@example.com")
    env.put(acct["account_id"], "/Ext/a.txt", b"external")
    grant = env.admin("tokens", {"app_key": APP_KEY, "account_id": acct["account_id"], "offline": True})
    resp = cc.integrations.connect_data_source(
        authentication={"source": "DROPBOX", "access_token": grant["access_token"],
                        "refresh_token": grant["refresh_token"]},
        sync_options={"data_source_tags": {"via": "connect"}},
        validate=True,
    )
    ds = resp.data_source
    assert ds.data_source_type == "DROPBOX"
    assert ds.data_source_external_id == acct["account_id"]
    assert ds.tags.get("via") == "connect"
    assert resp.sync_url is None
    _wait_listed(cc, ds.id)
    names = [i.name for i in cc.integrations.list_data_source_items(data_source_id=ds.id, validate=True).items]
    assert "Ext" in names, names
    expect_api_error(
        lambda: cc.integrations.connect_data_source(
            authentication={"source": "DROPBOX", "access_token": "sl.invalid"}),
        [400], "rejected token")
