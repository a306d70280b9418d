"""Helpers shared by the compatibility tests: SDK clients, error expectations, raw HTTP,
a local webhook receiver and Carbon's webhook signature verifier (written from Carbon's published
description: HMAC-SHA256, key = bytes.fromhex(signing_key), message "<t>.<body>")."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests
from carbon import Carbon
from carbon.exceptions import ApiException

CLIENT_ERRORS = range(400, 500)
POLL_TIMEOUT_S = 20.0

# Secrets handed to or received from the server during the run (API keys, access tokens, white-label
# client secrets, webhook signing keys); the session teardown checks none of them reached its log.
SENSITIVE: set[str] = set()


def remember_secret(value: str) -> str:
    if value:
        SENSITIVE.add(value)
    return value


# --------------------------------------------------------------------------- SDK clients


def org_client(base_url: str, api_key: str) -> Carbon:
    return Carbon(host=base_url, api_key=api_key)


def customer_client(base_url: str, api_key: str, customer_id: str) -> Carbon:
    return Carbon(host=base_url, api_key=api_key, customer_id=customer_id)


def token_client(base_url: str, token: str) -> Carbon:
    return Carbon(host=base_url, access_token=token)


def new_customer_id(prefix: str = "cust") -> str:
    return f"compat-{prefix}-{uuid.uuid4().hex[:12]}"


def ensure_customer(base_url: str, api_key: str, customer_id: str) -> str:
    """Creates the customer (first use of /auth/v1/access_token) and returns its access token."""
    tok = customer_client(base_url, api_key, customer_id).auth.get_access_token(validate=True)
    remember_secret(tok.refresh_token)
    return remember_secret(tok.access_token)


# --------------------------------------------------------------------------- conversions


def plain(value):
    """Turns SDK schema objects (frozendicts, tuples, Decimal-ish numbers, BoolClass…) into plain
    Python values, so responses of free-form endpoints can be inspected naturally."""
    if value is None:
        return None
    cls_name = type(value).__name__
    if cls_name == "NoneClass":
        return None
    if cls_name == "BoolClass":
        return bool(value)
    if isinstance(value, bool):
        return value
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(by_alias=True))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value
    try:  # konfig's number schemas are Decimal subclasses
        from decimal import Decimal

        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
    except Exception:  # pragma: no cover - defensive
        pass
    return value


# --------------------------------------------------------------------------- error expectations


def expect_api_error(call: Callable[[], object], expected: Iterable[int] | range, what: str) -> ApiException:
    """Runs `call` and asserts it raised `ApiException` with a status in `expected`."""
    expected_desc = (
        f"{expected.start}-{expected.stop - 1}" if isinstance(expected, range) else sorted(expected)
    )
    try:
        result = call()
    except ApiException as e:
        assert e.status in expected, (
            f"{what}: expected HTTP {expected_desc}, got {e.status}; body={plain(e.body)!r}"
        )
        return e
    raise AssertionError(f"{what}: expected HTTP {expected_desc}, but the call succeeded: {result!r}")


def assert_fastapi_422(status: int, body, what: str, loc_contains: str | None = None) -> None:
    """Carbon (FastAPI) validation errors: 422 {"detail": [{"loc": [...], "msg": str, "type": str}]}."""
    assert status == 422, f"{what}: expected HTTP 422, got {status}; body={body!r}"
    assert isinstance(body, dict) and "detail" in body, (
        f"{what}: 422 body must be a JSON object with `detail`, got {body!r}"
    )
    detail = body["detail"]
    assert isinstance(detail, list) and detail, (
        f"{what}: 422 `detail` must be a non-empty list of {{loc,msg,type}}, got {detail!r}"
    )
    for item in detail:
        assert isinstance(item, dict), f"{what}: detail items must be objects, got {item!r}"
        for key in ("loc", "msg", "type"):
            assert key in item, f"{what}: detail item lacks `{key}`: {item!r}"
        assert isinstance(item["loc"], list), f"{what}: `loc` must be a list, got {item!r}"
        assert isinstance(item["msg"], str) and item["msg"], f"{what}: `msg` must be a non-empty string: {item!r}"
    if loc_contains is not None:
        flat = json.dumps(detail)
        assert loc_contains in flat, (
            f"{what}: expected the 422 detail to point at `{loc_contains}`, got {detail!r}"
        )


# --------------------------------------------------------------------------- raw HTTP


def raw(base_url: str, method: str, path: str, *, headers: dict | None = None, data=None, json_body=None):
    """Plain `requests` call for what the SDK cannot express. Returns (status, parsed_json_or_text, response)."""
    hdrs = {"Accept": "application/json"}
    if headers:
        hdrs.update(headers)
    kwargs = {"headers": hdrs, "timeout": 30}
    if json_body is not None:
        kwargs["json"] = json_body
    elif data is not None:
        kwargs["data"] = data
        hdrs.setdefault("Content-Type", "application/json")
    resp = requests.request(method, base_url + path, **kwargs)
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    return resp.status_code, body, resp


def raw_multi_header(base_url: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None = None):
    """Sends a request with possibly repeated header names (e.g. two `authorization` headers)."""
    u = urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, (u.path or "") + path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body is not None:
            conn.send(body)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return resp.status, parsed
    finally:
        conn.close()


# --------------------------------------------------------------------------- polling


def poll(predicate: Callable[[], object], what: str, timeout: float = POLL_TIMEOUT_S, interval: float = 0.2):
    """Calls `predicate` until it returns a truthy value; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError as e:  # allow predicates that assert
            last_exc = e
        if time.monotonic() >= deadline:
            extra = f" (last assertion: {last_exc})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


# --------------------------------------------------------------------------- webhooks


class WebhookReceiver:
    """HTTP server on 127.0.0.1:0 that records every POST and answers 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first  # answer 500 to this many deliveries first (retry tests)
        self.requests: list[dict] = []
        self._cond = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.path = f"/hooks/{uuid.uuid4().hex}"

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                entry = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "received_at": time.time(),
                }
                with receiver._cond:
                    failing = len(receiver.requests) < receiver.fail_first
                    entry["answered"] = 500 if failing else 200
                    receiver.requests.append(entry)
                    receiver._cond.notify_all()
                self.send_response(entry["answered"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):  # silence
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="webhook-rx", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def events(self) -> list[dict]:
        """Decoded deliveries: each raw entry plus `outer` and `inner` JSON (None if undecodable)."""
        with self._cond:
            return self._decoded_locked()

    def wait_for(self, predicate: Callable[[dict], bool], what: str, timeout: float = POLL_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self._decoded_locked():
                    if ev["inner"] is not None and predicate(ev):
                        return ev
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [
                        (ev["inner"] or {}).get("webhook_type") if ev["inner"] else ev["body"][:200]
                        for ev in self._decoded_locked()
                    ]
                    raise AssertionError(
                        f"no webhook delivery matching {what} within {timeout}s; received: {seen!r}"
                    )
                self._cond.wait(min(remaining, 0.5))

    def _decoded_locked(self) -> list[dict]:
        out = []
        for e in self.requests:
            d = dict(e)
            try:
                d["outer"] = json.loads(e["body"])
                d["inner"] = json.loads(d["outer"]["payload"])
            except (ValueError, KeyError, TypeError):
                d.setdefault("outer", None)
                d["inner"] = None
            out.append(d)
        return out


def parse_signature_header(value: str) -> dict:
    """`t=<ts>,v1=<hex>` → {"t": "<ts>", "v1": "<hex>"}."""
    parts = {}
    for piece in value.split(","):
        key, sep, val = piece.strip().partition("=")
        assert sep, f"malformed signature header piece {piece!r} in {value!r}"
        parts[key] = val
    return parts


def expected_v1(signing_key: str, timestamp: str, raw_body: bytes) -> str:
    msg = timestamp.encode() + b"." + raw_body
    return hmac.new(bytes.fromhex(signing_key), msg, hashlib.sha256).hexdigest()


def expected_v2(signing_key: str, timestamp: str, raw_body: bytes) -> str:
    compact = json.dumps(json.loads(raw_body), separators=(",", ":"))
    msg = f"{timestamp}.{compact}".encode()
    return hmac.new(bytes.fromhex(signing_key), msg, hashlib.sha256).hexdigest()


def verify_carbon_signatures(signing_key: str, headers: dict, raw_body: bytes, tolerance_s: int = 300) -> None:
    """Asserts both Carbon signature headers verify (v1 over the raw body, v2 over the compact one)."""
    sig = headers.get("carbon-signature")
    compact = headers.get("carbon-signature-compact")
    assert sig, f"webhook lacks the Carbon-Signature header; headers={headers!r}"
    assert compact, f"webhook lacks the Carbon-Signature-Compact header; headers={headers!r}"
    p1 = parse_signature_header(sig)
    p2 = parse_signature_header(compact)
    assert "t" in p1 and "v1" in p1, f"Carbon-Signature must be `t=<ts>,v1=<hex>`, got {sig!r}"
    assert "t" in p2 and "v2" in p2, f"Carbon-Signature-Compact must be `t=<ts>,v2=<hex>`, got {compact!r}"
    for p in (p1, p2):
        assert p["t"].isdigit(), f"signature timestamp must be unix seconds, got {p['t']!r}"
        assert abs(int(p["t"]) - time.time()) <= tolerance_s, f"signature timestamp {p['t']} is not recent"
    want1 = expected_v1(signing_key, p1["t"], raw_body)
    assert hmac.compare_digest(want1, p1["v1"]), (
        f"Carbon-Signature v1 does not verify: header {p1['v1']}, expected {want1} "
        f"(HMAC-SHA256(bytes.fromhex(signing_key), '{p1['t']}.' + raw body))"
    )
    want2 = expected_v2(signing_key, p2["t"], raw_body)
    assert hmac.compare_digest(want2, p2["v2"]), (
        f"Carbon-Signature-Compact v2 does not verify: header {p2['v2']}, expected {want2} "
        "(HMAC over '<t>.' + json.dumps(json.loads(body), separators=(',', ':')))"
    )
