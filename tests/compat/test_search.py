"""Retrieval through the official SDK with response validation on: keyword, semantic and hybrid
`embeddings.get_documents(...)`, bring-your-own chunks via `embeddings.upload_chunks_and_embeddings`,
validation errors, and customer isolation.

Files are created with `files.upload_text` (skip_embedding_generation) when the server offers
it; until the file pipeline lands, the test inserts the file rows into the server's database
directly (the only way to get a file id without it). Chunks are always uploaded through the SDK
without vectors, so the server embeds them with its own model."""

from __future__ import annotations

import sqlite3
import time
import pytest

from compat_helpers import customer_client, expect_api_error, new_customer_id, raw

DOCS = {
    "cats": ["Cats purr and sleep most of the day.", "A kitten is a young cat that plays with yarn."],
    "dogs": ["Dogs bark at the mailman every morning.", "Puppies chew shoes and need training."],
    "code": ["Call parse_pdf_tables to extract tables from a PDF.", "The Rust borrow checker enforces ownership."],
}


def _file_id(server, base_url, api_key, cid, name):
    hdrs = {"authorization": f"Bearer {api_key}", "customer-id": cid}
    status, body, _ = raw(base_url, "POST", "/upload_text", headers=hdrs, json_body={
        "contents": f"placeholder for {name}", "name": name, "skip_embedding_generation": True})
    if status not in (404, 405):
        assert status == 200, body
        fid = body["id"]
        status, body, _ = raw(base_url, "POST", "/create_user_file_tags", headers=hdrs,
                              json_body={"tags": {"topic": name}, "organization_user_file_id": fid})
        assert status == 200, body
        # the worker processes the placeholder first; chunks uploaded before it finishes would be
        # replaced by its result
        deadline = time.time() + 60
        while time.time() < deadline:
            _, files, _ = raw(base_url, "POST", "/user_files_v2", headers=hdrs,
                              json_body={"filters": {"ids": [fid]}})
            if files["results"][0]["sync_status"] == "READY":
                return fid
            time.sleep(0.2)
        raise AssertionError(f"file {fid} did not become READY: {files}")
    _, me, _ = raw(base_url, "GET", "/whoami", headers=hdrs)
    db = sqlite3.connect(server.data_dir / "carbide.db", timeout=30)
    with db:
        cur = db.execute(
            "INSERT INTO files (organization_id, organization_user_id, source, external_file_id, name,"
            " sync_status, file_format, tags, created_at, updated_at)"
            " VALUES (?, ?, 'RAW_TEXT', ?, ?, 'READY', 'TXT', ?, 0, 0)",
            (me["organization_id"], me["id"], name, name, '{"topic": "%s"}' % name))
    db.close()
    return cur.lastrowid


@pytest.fixture(scope="module")
def corpus(server, base_url, org_a):
    cid = new_customer_id("search")
    client = customer_client(base_url, org_a.api_key, cid)
    ids = {}
    for name, chunks in DOCS.items():
        fid = _file_id(server, base_url, org_a.api_key, cid, name)
        ids[name] = fid
        client.embeddings.upload_chunks_and_embeddings(
            embedding_model="OPENAI",
            overwrite_existing=True,
            chunks_and_embeddings=[{"file_id": fid, "chunks_and_embeddings": [
                {"chunk_number": i, "chunk": c} for i, c in enumerate(chunks)]}],
            validate=True,
        )
    return client, ids, cid


def _docs(resp):
    return [(d.file_id, d.content) for d in resp.documents]


def test_semantic_search_validates(corpus):
    client, ids, _ = corpus
    resp = client.embeddings.get_documents(query="a young cat playing", k=2, validate=True)
    assert _docs(resp)[0] == (ids["cats"], DOCS["cats"][1])
    d = resp.documents[0]
    assert d.vector is None and d.rank == 1 and d.chunk_index == 1 and d.score > 0


def test_keyword_search_validates(corpus):
    client, ids, _ = corpus
    resp = client.embeddings.get_documents(
        query="parse_pdf_tables", k=3, hybrid_search=True,
        hybrid_search_tuning_parameters={"weight_a": 0.0, "weight_b": 1.0}, validate=True)
    assert _docs(resp) == [(ids["code"], DOCS["code"][0])]


def test_hybrid_search_validates_with_every_include_flag(corpus):
    client, ids, _ = corpus
    resp = client.embeddings.get_documents(
        query="dogs barking at the mail carrier", k=4, hybrid_search=True,
        include_vectors=True, include_tags=True, include_raw_file=True,
        include_file_level_metadata=True, validate=True)
    assert resp.documents[0].file_id == ids["dogs"]
    assert len(resp.documents[0].vector) == 384
    scores = [d.score for d in resp.documents]
    assert scores == sorted(scores, reverse=True)


def test_filters_through_sdk(corpus):
    client, ids, _ = corpus
    resp = client.embeddings.get_documents(query="cat", k=10, file_ids=[ids["code"]], validate=True)
    assert {d.file_id for d in resp.documents} == {ids["code"]}
    resp = client.embeddings.get_documents(
        query="cat", k=10, hybrid_search=True,
        tags_v2={"AND": [{"key": "topic", "value": "cats", "negate": True}]}, validate=True)
    assert ids["cats"] not in {d.file_id for d in resp.documents}


def test_validation_errors(corpus, base_url, org_a):
    client, _, cid = corpus
    expect_api_error(lambda: client.embeddings.get_documents(query="x", k=0), {422}, "k=0")
    expect_api_error(lambda: client.embeddings.get_documents(
        query="x", k=1, hybrid_search=True,
        hybrid_search_tuning_parameters={"weight_a": 0.7, "weight_b": 0.7}), {422}, "weights summing to 1.4")
    expect_api_error(lambda: client.embeddings.get_documents(
        query="x", k=1, embedding_model="COHERE_MULTILINGUAL_V3"), {400}, "unconfigured model")


def test_other_customer_sees_nothing(base_url, org_a, corpus):
    other = customer_client(base_url, org_a.api_key, new_customer_id("other"))
    for kw in ({}, {"hybrid_search": True}):
        assert other.embeddings.get_documents(query="cats dogs rust", k=10, validate=True, **kw).documents == []
