"""Rate limits and server errors, business accounts with path roots, and webhooks."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import dropbox
import pytest
from dropbox import common, files
from dropbox.exceptions import ApiError, InternalServerError, PathRootError, RateLimitError

from conftest import APP_KEY, APP_SECRET


def test_rate_limit_json_with_retry_after(emu):
    acct, dbx = emu.user_client()
    emu.admin("faults", {"route": "files/list_folder", "status": 429, "times": 1, "retry_after": 7})
    with pytest.raises(RateLimitError) as e:
        dbx.files_list_folder("")
    assert e.value.backoff == 7
    assert e.value.error.reason.is_too_many_requests()
    # The fault was used up.
    dbx.files_list_folder("")


def test_rate_limit_text_body(emu):
    acct, dbx = emu.user_client()
    emu.admin("faults", {"route": "/2/files/get_metadata", "status": 429, "retry_after": 3, "body": "text"})
    emu.put(acct["account_id"], "/a.txt", "a")
    with pytest.raises(RateLimitError) as e:
        dbx.files_get_metadata("/a.txt")
    assert e.value.backoff == 3


def test_write_contention_without_retry_after(emu):
    acct, dbx = emu.user_client()
    emu.admin("faults", {"route": "files/list_folder", "status": 429, "reason": "too_many_write_operations"})
    with pytest.raises(RateLimitError) as e:
        dbx.files_list_folder("")
    assert e.value.error.reason.is_too_many_write_operations()


def test_server_errors(emu):
    acct, dbx = emu.user_client()
    emu.admin("faults", {"route": "users/get_current_account", "status": 503, "times": 2, "retry_after": 1, "body": "text"})
    with pytest.raises(InternalServerError) as e:
        dbx.users_get_current_account()
    assert e.value.status_code == 503
    # The SDK retries 5xx when allowed.
    retrying = emu.client(dbx._oauth2_access_token, max_retries_on_error=3)
    assert retrying.users_get_current_account().account_id == acct["account_id"]


def test_injected_409_reset(emu):
    acct, dbx = emu.user_client()
    cursor = dbx.files_list_folder("").cursor
    emu.admin("faults", {"route": "files/list_folder/continue", "status": 409, "reason": "reset"})
    with pytest.raises(ApiError) as e:
        dbx.files_list_folder_continue(cursor)
    assert e.value.error.is_reset()


def test_business_account_and_path_root(emu):
    acct, dbx = emu.user_client("ada@acme.example", team={"name": "Acme"})
    aid = acct["account_id"]
    me = dbx.users_get_current_account()
    assert me.account_type.is_business()
    assert me.team.name == "Acme"
    assert me.team_member_id
    assert isinstance(me.root_info, common.TeamRootInfo)
    assert me.root_info.home_path == "/Ada Lane"
    assert me.root_info.root_namespace_id != me.root_info.home_namespace_id
    emu.put(aid, "/mine.txt", "home file")
    emu.put(aid, f"ns:{me.root_info.root_namespace_id}/Team Folder/plan.md", "team file")
    # Default root = home namespace.
    assert [e.name for e in dbx.files_list_folder("").entries] == ["mine.txt"]
    # Team root.
    rooted = dbx.with_path_root(common.PathRoot.root(me.root_info.root_namespace_id))
    names = sorted(e.path_display for e in rooted.files_list_folder("", recursive=True).entries)
    assert names == ["/Ada Lane", "/Ada Lane/mine.txt", "/Team Folder", "/Team Folder/plan.md"]
    meta, resp = rooted.files_download("/Team Folder/plan.md")
    assert resp.content == b"team file"
    # ns: paths and namespace_id roots.
    by_ns = dbx.files_list_folder(f"ns:{me.root_info.root_namespace_id}/Team Folder")
    assert [e.name for e in by_ns.entries] == ["plan.md"]
    ns_root = dbx.with_path_root(common.PathRoot.namespace_id(me.root_info.home_namespace_id))
    assert [e.name for e in ns_root.files_list_folder("").entries] == ["mine.txt"]
    # Stale root → invalid_root with the current root info; foreign namespace → no_permission.
    with pytest.raises(PathRootError) as e:
        dbx.with_path_root(common.PathRoot.root("999999")).files_list_folder("")
    assert e.value.error.is_invalid_root()
    assert e.value.error.get_invalid_root().root_namespace_id == me.root_info.root_namespace_id
    other = emu.account("bob@example.com")
    with pytest.raises(PathRootError) as e:
        dbx.with_path_root(common.PathRoot.namespace_id(other["root_namespace_id"])).files_list_folder("")
    assert e.value.error.is_no_permission()
    # A second member of the same team shares the root.
    bob = emu.account("bob@acme.example", given_name="Bob", surname="Stone", team={"name": "Acme"})
    assert bob["root_namespace_id"] == acct["root_namespace_id"]
    assert bob["home_path"] == "/Bob Stone"


class _Receiver(BaseHTTPRequestHandler):
    posts = []
    event = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        challenge = parse_qs(urlparse(self.path).query).get("challenge", [""])[0]
        body = challenge.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).posts.append((self.headers.get("X-Dropbox-Signature"), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        type(self).event.set()


def test_webhook_challenge_and_signed_notifications(emu):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert emu.admin("webhooks", {"app_key": APP_KEY, "url": url}) == {"verified": True}
        acct = emu.account()
        emu.token(acct["account_id"])  # links the account to the app
        _Receiver.event.clear()
        emu.put(acct["account_id"], "/changed.txt", "new")
        assert _Receiver.event.wait(10), "no webhook delivered"
        sig, body = _Receiver.posts[-1]
        expected = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(sig, expected)
        payload = json.loads(body)
        assert payload["list_folder"]["accounts"] == [acct["account_id"]]
        assert payload["delta"]["users"] == [int(emu.token(acct["account_id"])["uid"])]
    finally:
        server.shutdown()


def test_webhook_unverified_endpoint_is_refused(emu):
    class Wrong(_Receiver):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"wrong")

    server = HTTPServer(("127.0.0.1", 0), Wrong)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert emu.admin("webhooks", {"app_key": APP_KEY, "url": url}) == {"verified": False}
    finally:
        server.shutdown()
