"""Listing, metadata, download, longpoll, deletions and typed errors via the official SDK."""

import hashlib
import os
import threading
import time

import pytest
from dropbox import files
from dropbox.content_hash import DropboxContentHasher
from dropbox.exceptions import ApiError, BadInputError


def _hash(data):
    h = DropboxContentHasher()
    h.update(data)
    return h.hexdigest()


def _list_all(dbx, path, **kw):
    res = dbx.files_list_folder(path, **kw)
    entries = list(res.entries)
    pages = 1
    while res.has_more:
        res = dbx.files_list_folder_continue(res.cursor)
        entries.extend(res.entries)
        pages += 1
    return entries, res.cursor, pages


def test_recursive_listing_with_pagination(emu):
    acct, dbx = emu.user_client()
    aid = acct["account_id"]
    for i in range(25):
        emu.put(aid, f"/Docs/Reports/r{i:02}.txt", f"report {i}")
    emu.put(aid, "/top.md", "# top")
    entries, cursor, pages = _list_all(dbx, "", recursive=True, limit=7)
    assert pages >= 4
    paths = [e.path_display for e in entries]
    assert paths.index("/Docs") < paths.index("/Docs/Reports") < paths.index("/Docs/Reports/r00.txt")
    files_ = [e for e in entries if isinstance(e, files.FileMetadata)]
    assert len(files_) == 26
    assert all(len(f.rev) >= 9 and f.content_hash and f.id.startswith("id:") for f in files_)
    # Non-recursive listing of a subfolder by id.
    reports = dbx.files_get_metadata("/docs/reports")
    assert isinstance(reports, files.FolderMetadata)
    assert reports.path_display == "/Docs/Reports"
    res = dbx.files_list_folder(reports.id)
    assert len(res.entries) == 25 and not res.has_more
    top = dbx.files_list_folder("")
    assert sorted(e.name for e in top.entries) == ["Docs", "top.md"]


def test_metadata_by_path_id_and_rev(emu):
    acct, dbx = emu.user_client()
    meta = emu.put(acct["account_id"], "/Notes/Résumé 😀.md", "héllo")
    by_path = dbx.files_get_metadata("/NOTES/résumé 😀.md")
    assert isinstance(by_path, files.FileMetadata)
    assert by_path.path_display == "/Notes/Résumé 😀.md"
    assert by_path.path_lower == "/notes/résumé 😀.md"
    assert by_path.id == meta["id"]
    assert by_path.size == len("héllo".encode())
    assert by_path.content_hash == _hash("héllo".encode())
    assert by_path.server_modified.year >= 2024
    assert dbx.files_get_metadata(meta["id"]).path_lower == by_path.path_lower
    assert dbx.files_get_metadata("rev:" + meta["rev"]).rev == meta["rev"]
    # The SDK refuses "" client-side; the server answers 400 in Dropbox's wording too.
    r = emu.session().post(
        f"{emu.base_url}/2/files/get_metadata",
        json={"path": ""},
        headers={"Authorization": f"Bearer {dbx._oauth2_access_token}"},
    )
    assert r.status_code == 400
    assert r.text.startswith('Error in call to API function "files/get_metadata"')


def test_download_with_content_hash_and_range(emu):
    acct, dbx = emu.user_client()
    data = os.urandom(5 * 1024 * 1024 + 123)
    emu.put(acct["account_id"], "/Big/blob.bin", data)
    meta, resp = dbx.files_download("/big/BLOB.bin")
    body = resp.content
    assert body == data
    assert meta.content_hash == _hash(body)
    assert meta.size == len(data)
    # Unicode name: Dropbox-API-Result must be ASCII-escaped for the SDK to decode it.
    emu.put(acct["account_id"], "/Ünï 😀.txt", "x")
    meta2, resp2 = dbx.files_download("/ünï 😀.txt")
    assert meta2.name == "Ünï 😀.txt" and resp2.content == b"x"
    # Range requests (raw HTTP with the same token).
    http = emu.session()
    url = f"{emu.base_url}/2/files/download"
    headers = {"Authorization": f"Bearer {dbx._oauth2_access_token}", "Dropbox-API-Arg": '{"path": "/Big/blob.bin"}'}
    r = http.post(url, headers={**headers, "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = http.post(url, headers={**headers, "Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = http.post(url, headers={**headers, "Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    # GET form with arg and authorization query parameters.
    r = http.get(url, params={"arg": '{"path": "/Big/blob.bin"}', "authorization": f"Bearer {dbx._oauth2_access_token}"})
    assert r.status_code == 200 and hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()


def test_download_errors_are_typed(emu):
    acct, dbx = emu.user_client()
    emu.admin("folders", {"account_id": acct["account_id"], "path": "/Folder"})
    with pytest.raises(ApiError) as e:
        dbx.files_download("/missing.txt")
    assert e.value.error.is_path() and e.value.error.get_path().is_not_found()
    assert e.value.request_id
    with pytest.raises(ApiError) as e:
        dbx.files_download("/Folder")
    assert e.value.error.get_path().is_not_file()
    emu.put(acct["account_id"], "/doc.paper", "p", is_downloadable=False)
    with pytest.raises(ApiError) as e:
        dbx.files_download("/doc.paper")
    assert e.value.error.is_unsupported_file()


def test_list_errors_are_typed(emu):
    acct, dbx = emu.user_client()
    emu.put(acct["account_id"], "/a.txt", "a")
    with pytest.raises(ApiError) as e:
        dbx.files_list_folder("/nope")
    assert e.value.error.is_path() and e.value.error.get_path().is_not_found()
    assert e.value.user_message_text is None
    with pytest.raises(ApiError) as e:
        dbx.files_list_folder("/a.txt")
    assert e.value.error.get_path().is_not_folder()
    with pytest.raises(ApiError) as e:
        dbx.files_get_metadata("/nope")
    assert e.value.error.get_path().is_not_found()
    r = emu.session().post(
        f"{emu.base_url}/2/files/list_folder",
        json={"path": "/"},
        headers={"Authorization": f"Bearer {dbx._oauth2_access_token}"},
    )
    assert r.status_code == 400
    assert "Specify the root folder as an empty string" in r.text


def test_cursor_sees_edits_renames_and_deletions(emu):
    acct, dbx = emu.user_client()
    aid = acct["account_id"]
    a = emu.put(aid, "/Work/a.txt", "one")
    emu.put(aid, "/Work/b.txt", "two")
    _, cursor, _ = _list_all(dbx, "/work", recursive=True)
    emu.put(aid, "/Work/a.txt", "one, edited")
    emu.admin("move", {"account_id": aid, "from_path": "/Work/b.txt", "to_path": "/Work/Sub/B2.txt"})
    emu.admin("delete", {"account_id": aid, "path": "/Work/a.txt"})
    emu.put(aid, "/Elsewhere/c.txt", "out of scope")
    res = dbx.files_list_folder_continue(cursor)
    by_kind = [(type(e).__name__, e.path_lower) for e in res.entries]
    assert ("FileMetadata", "/work/a.txt") not in by_kind or by_kind.index(("FileMetadata", "/work/a.txt")) < by_kind.index(
        ("DeletedMetadata", "/work/a.txt")
    )
    assert ("DeletedMetadata", "/work/b.txt") in by_kind
    assert ("FileMetadata", "/work/sub/b2.txt") in by_kind
    assert ("DeletedMetadata", "/work/a.txt") in by_kind
    assert all(not p.startswith("/elsewhere") for _, p in by_kind)
    moved = [e for e in res.entries if isinstance(e, files.FileMetadata) and e.path_lower == "/work/sub/b2.txt"][0]
    assert moved.id != a["id"]
    assert dbx.files_get_metadata(moved.id).path_display == "/Work/Sub/B2.txt"
    # Replaying an old cursor is idempotent.
    again = dbx.files_list_folder_continue(cursor)
    assert [(type(e).__name__, e.path_lower) for e in again.entries] == by_kind
    # include_deleted lists historical deletions.
    listing = dbx.files_list_folder("/work", include_deleted=True, recursive=True)
    assert any(isinstance(e, files.DeletedMetadata) and e.path_lower == "/work/a.txt" for e in listing.entries)
    assert dbx.files_get_metadata("/work/a.txt", include_deleted=True).name == "a.txt"


def test_get_latest_cursor_only_sees_new_changes(emu):
    acct, dbx = emu.user_client()
    emu.put(acct["account_id"], "/old.txt", "old")
    cursor = dbx.files_list_folder_get_latest_cursor("").cursor
    assert dbx.files_list_folder_continue(cursor).entries == []
    emu.put(acct["account_id"], "/new.txt", "new")
    names = [e.name for e in dbx.files_list_folder_continue(cursor).entries]
    assert names == ["new.txt"]


def test_longpoll_wakes_on_change(emu):
    acct, dbx = emu.user_client()
    cursor = dbx.files_list_folder("").cursor
    out = {}

    def poll():
        start = time.time()
        out["result"] = dbx.files_list_folder_longpoll(cursor, timeout=30)
        out["elapsed"] = time.time() - start

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    emu.put(acct["account_id"], "/dropped.txt", "hi")
    t.join(20)
    assert out["result"].changes is True
    assert out["elapsed"] < 10
    assert [e.name for e in dbx.files_list_folder_continue(cursor).entries] == ["dropped.txt"]
    # Out-of-range timeout is a 400 (the SDK validates client-side, so use raw HTTP).
    r = emu.session().post(
        f"{emu.base_url}/2/files/list_folder/longpoll",
        json={"cursor": cursor, "timeout": 10},
    )
    assert r.status_code == 400
    assert "timeout" in r.text


def test_longpoll_rejects_authorization_header(emu):
    acct, dbx = emu.user_client()
    cursor = dbx.files_list_folder("").cursor
    r = emu.session().post(
        f"{emu.base_url}/2/files/list_folder/longpoll",
        json={"cursor": cursor},
        headers={"Authorization": "Bearer x"},
    )
    assert r.status_code == 400
    assert "Authorization header" in r.text


def test_cursor_reset(emu):
    acct, dbx = emu.user_client()
    cursor = dbx.files_list_folder("").cursor
    emu.admin("cursors/reset", {"account_id": acct["account_id"]})
    with pytest.raises(ApiError) as e:
        dbx.files_list_folder_continue(cursor)
    assert e.value.error.is_reset()
