"""File ingestion through the official SDK with response validation on: `files.upload` (real
documents from ../shared/corpus/docs with chunking options), `files.upload_text`,
`files.upload_from_url` (served by a local http.server thread; the fixture sets
`CARBIDE_ALLOW_PRIVATE_URLS=1`), `files.query_user_files` (filters, pagination, order, presigned
links), `files.query_user_files_deprecated`, `files.get_parsed_file` / `files.get_raw_file` (the
presigned URLs downloaded with `requests`), `embeddings.get_embeddings_and_chunks`,
`embeddings.list`, `files.resync`, `files.delete_v2`, `files.delete_many`, file tags, and a broken
file ending in SYNC_ERROR with a reason.

Files are processed by the server's background worker: every test polls until the file is READY
(or SYNC_ERROR). Vectors are asserted when the embedding model is installed (`make model`);
without it, uploads ask for `skip_embedding_generation`."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
import requests

from compat_helpers import customer_client, expect_api_error, plain, poll

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "docs"
HAVE_MODEL = (REPO_ROOT / "models" / "all-MiniLM-L6-v2" / "model.safetensors").is_file()
SKIP_EMB = not HAVE_MODEL
MINILM_DIMS = 384
PROCESS_TIMEOUT_S = 90.0

DOCX = CORPUS / "docx" / "us-docx-tables.docx"
CSV = CORPUS / "text" / "tika-testCSV.csv"
PDF = CORPUS / "pdf" / "pypdf-minimal-document.pdf"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"corpus file {path} missing (../shared/corpus/docs)")
    return path


@pytest.fixture
def client(base_url, org_a, cid):
    return customer_client(base_url, org_a.api_key, cid)


def _get(client, file_id: int) -> dict:
    resp = client.files.query_user_files(filters={"ids": [file_id]}, validate=True)
    assert resp.count == 1, f"file {file_id} not listed: {plain(resp)!r}"
    return plain(resp.results[0])


def _wait(client, file_id: int, want: str = "READY") -> dict:
    """Polls /user_files_v2 until the file leaves the queue; asserts it reached `want`."""

    def done():
        f = _get(client, file_id)
        return f if f["sync_status"] in ("READY", "SYNC_ERROR") else None

    f = poll(done, f"file {file_id} to be processed", timeout=PROCESS_TIMEOUT_S, interval=0.3)
    assert f["sync_status"] == want, f"file {file_id}: expected {want}, got {f!r}"
    return f


def _chunks(client, file_id: int, **kw):
    kw.setdefault("pagination", {"limit": 100})
    resp = client.embeddings.get_embeddings_and_chunks(
        filters={"user_file_id": file_id}, validate=True, **kw
    )
    assert len(resp.results) == resp.count, "more chunks than one page"
    return resp


def _upload_text(client, contents: str, name: str, **kw) -> dict:
    f = client.files.upload_text(
        contents=contents, name=name, skip_embedding_generation=SKIP_EMB, validate=True, **kw
    )
    f = plain(f)
    assert f["sync_status"] in ("QUEUED_FOR_SYNC", "SYNCING", "READY"), f
    return f


# --------------------------------------------------------------------------- upload


def test_upload_docx_with_chunk_options(client):
    path = _need(DOCX)
    with open(path, "rb") as fh:
        f = plain(
            client.files.upload(
                file=fh,
                chunk_size=40,
                chunk_overlap=5,
                skip_embedding_generation=SKIP_EMB,
                prepend_filename_to_chunks=True,
                validate=True,
            )
        )
    assert f["name"] == path.name, f
    assert f["chunk_size"] == 40 and f["chunk_overlap"] == 5, f
    f = _wait(client, f["id"])
    assert f["file_statistics"]["file_format"] == "DOCX", f
    assert f["file_statistics"]["num_characters"] > 50, f
    assert f["file_statistics"]["file_size"] == path.stat().st_size, f

    resp = _chunks(client, f["id"], include_vectors=True)
    assert resp.count >= 2, f"chunk_size=40 should give several chunks: {plain(resp)!r}"
    texts = [c.source_content for c in resp.results]
    joined = " ".join(texts)
    for word in ("Simple uniform table", "Lorem ipsum", "Nested Table", "merged cells"):
        assert word in joined, f"{word!r} missing from the chunks: {texts!r}"
    assert all(t.startswith(path.name) for t in texts), "prepend_filename_to_chunks not applied"
    for c in resp.results:
        assert c.user_file_id == f["id"]
        if HAVE_MODEL:
            emb = plain(c.embedding)
            assert isinstance(emb, list) and len(emb) == MINILM_DIMS, emb
        else:
            assert c.embedding is None


def test_upload_csv_max_items_per_chunk(client):
    path = _need(CSV)
    with open(path, "rb") as fh:
        f = plain(
            client.files.upload(
                file=fh, max_items_per_chunk=4, skip_embedding_generation=SKIP_EMB, validate=True
            )
        )
    f = _wait(client, f["id"])
    assert f["file_statistics"]["file_format"] == "CSV", f
    resp = _chunks(client, f["id"], order_by="chunk_index", order_dir="asc")
    rows = [c.source_content.count("Square:") for c in resp.results]
    assert sum(rows) == 15, f"all 15 data rows must be chunked once: {rows}"
    assert max(rows) <= 4, f"max_items_per_chunk=4 exceeded: {rows}"
    assert [c.chunk_index for c in resp.results] == list(range(resp.count))
    assert "Number: 7, Square: 49" in " ".join(c.source_content for c in resp.results)


def test_upload_text_and_embeddings_list(client):
    text = "Aurora borealis report.\n\nThe glaciers of Svalbard retreat every summer."
    f = _upload_text(client, text, "aurora.txt")
    f = _wait(client, f["id"])
    assert f["source"] == "RAW_TEXT", f
    assert f["name"] == "aurora.txt"
    resp = client.embeddings.list(filters={"ids": [f["id"]]}, include_vectors=True, validate=True)
    assert resp.count >= 1
    assert "Svalbard" in " ".join(c.source_content for c in resp.results)
    if HAVE_MODEL:
        assert len(plain(resp.results[0].embedding)) == MINILM_DIMS
    # without include_vectors no vector is sent
    resp = client.embeddings.list(filters={"ids": [f["id"]]}, validate=True)
    assert all(c.embedding is None for c in resp.results)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    """Serves ../shared/corpus/docs on 127.0.0.1:<random port>."""
    handler = functools.partial(_QuietHandler, directory=str(CORPUS))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, name="file-server", daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_upload_from_url(client, file_server):
    _need(PDF)
    url = f"{file_server}/pdf/{PDF.name}"
    f = plain(
        client.files.upload_from_url(
            url=url, chunk_size=60, skip_embedding_generation=SKIP_EMB, validate=True
        )
    )
    assert f["name"] == PDF.name, f
    assert f["external_url"] == url, f
    f = _wait(client, f["id"])
    assert f["file_statistics"]["file_format"] == "PDF", f
    assert f["file_statistics"]["file_size"] == PDF.stat().st_size
    resp = _chunks(client, f["id"])
    assert "Lorem ipsum dolor sit amet" in " ".join(c.source_content for c in resp.results)
    # a missing file on the remote server is a client error, not a file record
    expect_api_error(
        lambda: client.files.upload_from_url(url=f"{file_server}/pdf/nope.pdf", validate=True),
        range(400, 500),
        "upload_from_url of a 404",
    )


# --------------------------------------------------------------------------- listing


def test_query_user_files_filters_pagination_order(client):
    ids = {}
    for name in ("b-beta.txt", "a-alpha.txt", "c-gamma.txt"):
        f = _upload_text(client, f"contents of {name}", name)
        ids[name] = f["id"]
    for fid in ids.values():
        _wait(client, fid)
    client.files.create_user_file_tags(
        tags={"team": "red"}, organization_user_file_id=ids["c-gamma.txt"], validate=True
    )

    page = client.files.query_user_files(
        pagination={"limit": 2, "offset": 0}, order_by="name", order_dir="asc", validate=True
    )
    assert page.count == 3, plain(page)
    assert [r.name for r in page.results] == ["a-alpha.txt", "b-beta.txt"]
    page2 = client.files.query_user_files(
        pagination={"limit": 2, "offset": 2}, order_by="name", order_dir="asc", validate=True
    )
    assert [r.name for r in page2.results] == ["c-gamma.txt"]
    desc = client.files.query_user_files(order_by="name", order_dir="desc", validate=True)
    assert [r.name for r in desc.results] == ["c-gamma.txt", "b-beta.txt", "a-alpha.txt"]
    by_id = client.files.query_user_files(order_by="id", order_dir="asc", validate=True)
    assert [r.id for r in by_id.results] == sorted(ids.values())

    tagged = client.files.query_user_files(filters={"tags": {"team": "red"}}, validate=True)
    assert [r.id for r in tagged.results] == [ids["c-gamma.txt"]]
    named = client.files.query_user_files(filters={"name": "a-alpha.txt"}, validate=True)
    assert [r.id for r in named.results] == [ids["a-alpha.txt"]]
    ready = client.files.query_user_files(filters={"sync_statuses": ["READY"]}, validate=True)
    assert ready.count == 3
    errs = client.files.query_user_files(filters={"sync_statuses": ["SYNC_ERROR"]}, validate=True)
    assert errs.count == 0

    # presigned links only on request
    plain_list = client.files.query_user_files(filters={"ids": [ids["a-alpha.txt"]]}, validate=True)
    assert plain_list.results[0].presigned_url is None
    assert plain_list.results[0].parsed_text_url is None
    linked = client.files.query_user_files(
        filters={"ids": [ids["a-alpha.txt"]]},
        include_raw_file=True,
        include_parsed_text_file=True,
        validate=True,
    )
    r = linked.results[0]
    assert r.presigned_url and r.parsed_text_url, plain(r)
    assert requests.get(r.presigned_url, timeout=30).content == b"contents of a-alpha.txt"
    assert "contents of a-alpha.txt" in requests.get(r.parsed_text_url, timeout=30).text

    old = plain(client.files.query_user_files_deprecated(
        filters={"ids": [ids["b-beta.txt"]]}, validate=True
    ))
    results = old["results"] if isinstance(old, dict) else old
    assert [x["id"] for x in results] == [ids["b-beta.txt"]], old


def test_parsed_and_raw_file_downloads(client):
    path = _need(DOCX)
    with open(path, "rb") as fh:
        f = plain(client.files.upload(file=fh, skip_embedding_generation=SKIP_EMB, validate=True))
    _wait(client, f["id"])
    parsed = client.files.get_parsed_file(file_id=f["id"], validate=True)
    text = requests.get(parsed.presigned_url, timeout=30)
    assert text.status_code == 200
    for word in ("Simple uniform table", "Lorem ipsum", "merged cells"):
        assert word in text.text, f"{word!r} not in the parsed text {text.text[:300]!r}"
    raw_link = client.files.get_raw_file(file_id=f["id"], validate=True)
    raw = requests.get(raw_link.presigned_url, timeout=30)
    assert raw.status_code == 200
    assert raw.content == path.read_bytes(), "raw file differs from the upload"
    # a tampered link is refused
    assert requests.get(raw_link.presigned_url + "0", timeout=30).status_code in (400, 403)
    expect_api_error(lambda: client.files.get_raw_file(file_id=999_999_999), [404], "unknown file")


# --------------------------------------------------------------------------- resync, tags, delete


def test_resync_rechunks(client):
    words = " ".join(f"word{i}" for i in range(400))
    f = _upload_text(client, words, "long.txt", chunk_size=200, chunk_overlap=0)
    _wait(client, f["id"])
    before = _chunks(client, f["id"]).count
    r = plain(client.files.resync(file_id=f["id"], chunk_size=50, chunk_overlap=0, validate=True))
    assert r["id"] == f["id"]
    f2 = _wait(client, f["id"])
    assert f2["chunk_size"] == 50, f2
    after = _chunks(client, f["id"])
    assert after.count > before, f"chunk_size 200 → 50 must give more chunks ({before} → {after.count})"
    joined = " ".join(c.source_content for c in after.results)
    assert "word0" in joined and "word399" in joined
    expect_api_error(lambda: client.files.resync(file_id=999_999_999), [404], "resync unknown file")


def test_file_tags(client):
    f = _upload_text(client, "tagged contents", "tags.txt")
    got = plain(client.files.create_user_file_tags(
        tags={"team": "red", "year": 2024, "labels": ["x", "y"]},
        organization_user_file_id=f["id"],
        validate=True,
    ))
    assert got["tags"] == {"team": "red", "year": 2024, "labels": ["x", "y"]}, got
    got = plain(client.files.delete_file_tags(
        tags=["team", "labels"], organization_user_file_id=f["id"], validate=True
    ))
    assert got["tags"] == {"year": 2024}, got
    listed = client.files.query_user_files(filters={"tags": {"year": 2024}}, validate=True)
    assert [r.id for r in listed.results] == [f["id"]]


def test_delete_v2_and_delete_many(client):
    a = _upload_text(client, "file a", "a.txt")
    b = _upload_text(client, "file b", "b.txt")
    c = _upload_text(client, "file c", "c.txt")
    for x in (a, b, c):
        _wait(client, x["id"])
    assert _chunks(client, a["id"]).count >= 1

    res = client.files.delete_v2(filters={"ids": [a["id"]]}, send_webhook=False, validate=True)
    assert res.success is True
    remaining = {r.id for r in client.files.query_user_files(validate=True).results}
    assert remaining == {b["id"], c["id"]}
    assert client.embeddings.list(filters={"ids": [a["id"]]}, validate=True).count == 0

    res = client.files.delete_many(file_ids=[b["id"]], validate=True)
    assert res.success is True
    remaining = {r.id for r in client.files.query_user_files(validate=True).results}
    assert remaining == {c["id"]}

    # preserve_file_record keeps the row but drops its content
    client.files.delete_v2(filters={"ids": [c["id"]]}, preserve_file_record=True, validate=True)
    assert {r.id for r in client.files.query_user_files(validate=True).results} == {c["id"]}
    assert client.embeddings.list(filters={"ids": [c["id"]]}, validate=True).count == 0


def test_broken_file_sync_error(client, tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref or pages")
    with open(path, "rb") as fh:
        f = plain(client.files.upload(file=fh, skip_embedding_generation=SKIP_EMB, validate=True))
    f = _wait(client, f["id"], want="SYNC_ERROR")
    msg = f["sync_error_message"]
    assert isinstance(msg, str) and msg.strip(), f"SYNC_ERROR needs a readable reason: {f!r}"
    errs = client.files.query_user_files(filters={"sync_statuses": ["SYNC_ERROR"]}, validate=True)
    assert [r.id for r in errs.results] == [f["id"]]
    assert _chunks(client, f["id"]).count == 0
