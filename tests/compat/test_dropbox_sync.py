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
