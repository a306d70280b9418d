"""Dropbox file sync through the official SDK (validate=True): oauth_url → consent on the
emulator → items sync/list → `integrations.sync_files` of a folder and a file → READY →
`embeddings.get_documents` finds the content → a file added in Dropbox becomes searchable with no
API call (longpoll) → `files.resync` → `files.delete_v2` (§4, §5, §9, §11).

Uses the `dropbox_env` fixture of test_dropbox_connect.py (its own carbide + emulator over HTTPS).
"""

from __future__ import annotations

import uuid

from compat_helpers import customer_client, org_client, poll, remember_secret
from test_dropbox_connect import DropboxEnv, _connect, _wait_listed, dropbox_env  # noqa: F401


def _files(cc):
    return cc.files.query_user_files(pagination={"limit": 100}, order_by="id", order_dir="asc", validate=True)


def _by_name(cc, name):
    return next((f for f in _files(cc).results if f.name == name), None)


def test_files_sync_search_change_resync_delete_through_sdk(dropbox_env: DropboxEnv, webhook_receiver):  # noqa: F811
    env = dropbox_env
    oc = org_client(env.base_url, env.api_key)
    remember_secret(oc.webhooks.add_url(url=webhook_receiver.url, validate=True).signing_key)
    cid = f"compat-sync-{uuid.uuid4().hex[:8]}"
    cc = customer_client(env.base_url, env.api_key, cid)
    aid = env.account(f"{cid}@example.com")["account_id"]
    env.put(aid, "/Handbook/policy.txt", b"employees may adopt a capybara on fridays")
    env.put(aid, "/Handbook/old.mp3", b"ID3 nope")
    env.put(aid, "/memo.md", b"# Memo\n\nthe heron migrates in spring")

    ds_id = _connect(env, cc, aid)["data_source_id"]
    cc.integrations.sync_data_source_items(data_source_id=ds_id, validate=True)
    _wait_listed(cc, ds_id)
    items = cc.integrations.list_data_source_items(data_source_id=ds_id, validate=True).items
    folder = next(i for i in items if i.name == "Handbook")
    memo = next(i for i in items if i.name == "memo.md")

    resp = cc.integrations.sync_files(
        data_source_id=ds_id,
        ids=[folder.external_id, memo.external_id],
        skip_embedding_generation=True,
        request_id="compat-sync-req",
        tags={"origin": "dropbox"},
        validate=True,
    )
    assert resp.success is True

    def ready(name):
        f = _by_name(cc, name)
        return f if f is not None and f.sync_status == "READY" else None

    policy = poll(lambda: ready("policy.txt"), "policy.txt READY")
    poll(lambda: ready("memo.md"), "memo.md READY")
    assert policy.source == "DROPBOX" and policy.organization_user_data_source_id == ds_id
    assert policy.request_id == "compat-sync-req" and policy.tags.get("origin") == "dropbox"
    song = _by_name(cc, "old.mp3")
    assert song.sync_status == "SYNC_ERROR" and "unsupported" in song.sync_error_message
    container = _by_name(cc, "Handbook")
    assert policy.parent_id == container.id

    docs = cc.embeddings.get_documents(query="capybara", k=3, validate=True).documents
    assert any("capybara" in d.content for d in docs)
    webhook_receiver.wait_for(lambda e: e["inner"]["webhook_type"] == "FILE_READY", "FILE_READY")

    # added in Dropbox, found by search without any API call
    env.put(aid, "/Handbook/new.txt", b"the office parrot speaks latin")
    poll(lambda: cc.embeddings.get_documents(query="parrot", k=3, validate=True).documents, "new file searchable")

    # resync fetches again and stays READY
    f = cc.files.resync(file_id=policy.id, validate=True)
    assert f.id == policy.id
    poll(lambda: ready("policy.txt"), "policy.txt READY after resync")

    # delete: gone from listings and search, FILE_DELETED sent
    cc.files.delete_v2(filters={"ids": [policy.id]}, send_webhook=True, validate=True)
    poll(lambda: _by_name(cc, "policy.txt") is None, "policy.txt deleted")
    assert not cc.embeddings.get_documents(query="capybara", k=3, validate=True).documents
    webhook_receiver.wait_for(lambda e: e["inner"]["webhook_type"] == "FILE_DELETED", "FILE_DELETED")


def test_sigkill_mid_sync_of_1000_files_ends_ready_exactly_once(tmp_path):
    """A `carbide serve` killed with SIGKILL while syncing a 1,000-file folder and started again on
    the same data directory ends with every file READY exactly once (no duplicates, no losses)."""
    import base64
    import os
    import signal
    import subprocess

    import requests

    from conftest import REPO_ROOT, STOP_TIMEOUT_S, carbide_bin, run_org_create
    from test_dropbox_connect import APP_KEY, APP_SECRET, CARBIDE_READY_RE, EMU_READY_RE, _start, emulator_bin

    n_files = int(os.environ.get("CARBIDE_KILL_TEST_FILES", "1000"))
    ca = tmp_path / "ca.pem"
    emu, emu_err, emu_url = _start(
        [str(emulator_bin()), "--listen", "127.0.0.1:0", "--tls", "--tls-cert-out", str(ca)],
        dict(os.environ),
        EMU_READY_RE,
        tmp_path / "emu.log",
    )
    env = dict(os.environ)
    env.update(
        CARBIDE_DATA_DIR=str(tmp_path / "data"),
        CARBIDE_LISTEN="127.0.0.1:0",
        CARBIDE_DROPBOX_URL=emu_url,
        CARBIDE_DROPBOX_CA_CERT=str(ca),
        CARBIDE_DROPBOX_APP_KEY=APP_KEY,
        CARBIDE_DROPBOX_APP_SECRET=APP_SECRET,
        CARBIDE_JOB_LEASE_SECS="4",
    )
    env.pop("CARBIDE_PUBLIC_URL", None)
    env.pop("CARBIDE_CONFIG", None)
    env.setdefault("CARBIDE_MODEL_DIR", str(REPO_ROOT / "models" / "all-MiniLM-L6-v2"))
    procs = []
    try:
        org = run_org_create(env, "kill-test")
        remember_secret(org.api_key)

        def admin(route, body):
            r = requests.post(f"{emu_url}/__admin/{route}", json=body, verify=str(ca), timeout=30)
            assert r.status_code == 200, r.text
            return r.json()

        proc, err_f, base = _start([str(carbide_bin()), "serve"], env, CARBIDE_READY_RE, tmp_path / "serve1.log")
        procs.append((proc, err_f))
        admin("apps", {"app_key": APP_KEY, "app_secret": APP_SECRET, "redirect_uris": [f"{base}/integrations/dropbox"]})
        aid = admin("accounts", {"email": "kill@example.com"})["account_id"]
        folder = admin("folders", {"account_id": aid, "path": "/Bulk"})["id"]
        for i in range(n_files):
            admin("files", {"account_id": aid, "path": f"/Bulk/doc{i:04}.txt",
                            "content_b64": base64.b64encode(f"bulk document {i} about kestrels".encode()).decode()})
        cc = customer_client(base, org.api_key, "kill-cust")
        url = cc.integrations.get_oauth_url(service="DROPBOX", sync_source_items=False, validate=True).oauth_url
        to = admin("oauth/approve", {"account_id": aid, "authorize_url": url})["redirect_to"]
        ds_id = requests.get(to + "&format=json", timeout=60).json()["data_source_id"]
        cc.integrations.sync_files(data_source_id=ds_id, ids=[folder], skip_embedding_generation=True, validate=True)

        def ready_count(client):
            r = client.files.query_user_files(filters={"sync_statuses": ["READY"]}, pagination={"limit": 1}, validate=True)
            return r.count

        poll(lambda: ready_count(cc) >= n_files // 10, "some files READY", timeout=300)
        before_kill = ready_count(cc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert before_kill < n_files, "the kill must land in the middle of the sync"

        proc2, err2, base2 = _start([str(carbide_bin()), "serve"], env, CARBIDE_READY_RE, tmp_path / "serve2.log")
        procs.append((proc2, err2))
        cc2 = customer_client(base2, org.api_key, "kill-cust")
        poll(lambda: ready_count(cc2) >= n_files, "every file READY after the restart", timeout=600)
        allf = []
        page = 0
        while True:
            r = cc2.files.query_user_files(pagination={"limit": 250, "offset": page * 250}, order_by="id", validate=True)
            allf.extend(r.results)
            if len(r.results) < 250:
                break
            page += 1
        files = [f for f in allf if f.name != "Bulk"]
        assert len(files) == n_files, f"{len(files)} records for {n_files} files"
        assert len({f.external_file_id for f in files}) == n_files, "duplicates"
        assert all(f.sync_status == "READY" for f in files)
    finally:
        for p, f in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            f.close()
        emu.kill()
        emu.wait()
        emu_err.close()
