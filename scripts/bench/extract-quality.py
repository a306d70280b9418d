#!/usr/bin/env python3
"""Text-extraction benchmark: quality (word recall against a reference) and speed (MB per CPU
second) of carbide's extractor, per format, against Poppler's pdftotext (PDF) and a Python
extractor (markitdown, run in-process so interpreter start-up is not counted).

Usage: scripts/bench/extract-quality.py [CORPUS_DIR] [--extractor PATH] [--no-markitdown]
  CORPUS_DIR   default ../shared/corpus/docs
  --extractor  carbide-extract binary (default target/release/carbide-extract, else target/debug)
markitdown comes from PyPI: pip install 'markitdown[pdf,docx,pptx,xlsx]' (a separate venv is
fine; run this script with that venv's python). Prints one table; numbers are CPU seconds of the
extracting process (user+sys), which hold up on a shared machine better than wall time.

Reference texts (as in the team's parsing study): PDFs `pdftotext -layout`; docx/pptx/xlsx every
text node of the package's XML parts; txt/csv/tsv/md the decoded file; rtf and images have no
automatic reference here and are reported for speed only.
"""
import argparse
import collections
import html
import json
import os
import re
import resource
import subprocess
import sys
import time
import unicodedata
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORD = re.compile(r"\w+", re.UNICODE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def tokens(text):
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"-\n(\w)", r"\1", text)
    out = []
    for w in WORD.findall(text):
        if CJK.search(w):
            out.extend(ch for ch in w)
        else:
            out.append(w)
    return collections.Counter(out)


def recall(reference, candidate):
    ref, cand = tokens(reference), tokens(candidate)
    total = sum(ref.values())
    if total == 0:
        return None
    return sum(min(n, cand[w]) for w, n in ref.items()) / total


TEXT_NODE = re.compile(r"<(?:w:t|a:t|t|x:t)(?:\s[^>]*)?>([^<]*)<")
# a paragraph (docx w:p, DrawingML a:p) or a shared string item (si) ends here
PARA_END = re.compile(r"</(?:w:p|a:p|si|x:si)>")
# tabs and line breaks inside a paragraph separate words
INLINE_BREAK = re.compile(r"<(?:w:tab|w:br|w:cr|a:br)\b[^>]*/>")


def xml_text(path):
    """Reference text of an OOXML package. Runs of one paragraph are joined without a space (a
    word split over two runs stays one word), paragraphs are separated, and XML character
    references are decoded (`&amp;` is `&`, not the word "amp")."""
    parts = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".xml") or "theme" in name or "rels" in name:
                continue
            xml = z.read(name).decode("utf-8", "replace")
            if name.startswith(("word/", "ppt/slides/", "ppt/notesSlides/", "xl/sharedStrings")):
                xml = INLINE_BREAK.sub("<w:t> </w:t>", xml)
                for para in PARA_END.split(xml):
                    text = "".join(TEXT_NODE.findall(para))
                    if text.strip():
                        parts.append(html.unescape(text))
            elif name.startswith("xl/worksheets/"):
                # Inline strings and literal values; shared-string cells hold an index, not text.
                for attrs, body in re.findall(r"<(?:\w+:)?c(\s[^>]*)?>(.*?)</(?:\w+:)?c>", xml, re.S):
                    if 't="s"' in (attrs or ""):
                        continue
                    parts.extend(html.unescape(t)
                                 for t in re.findall(r"<(?:\w+:)?[tv](?:\s[^>]*)?>([^<]*)<", body))
    return "\n".join(parts)


def decode(path):
    raw = open(path, "rb").read()
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            return raw.decode(enc, "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_carbide(exe, path):
    before = child_cpu()
    p = subprocess.run([exe, path, os.path.basename(path), str(50 << 20), str(256 << 20), "no-ocr"],
                       capture_output=True)
    cpu = child_cpu() - before
    try:
        res = json.loads(p.stdout)
    except ValueError:
        return None, cpu
    if "Ok" not in res:
        return None, cpu
    text = "\n".join(u["text"] for s in res["Ok"]["sections"] for u in s["units"])
    return text, cpu


def run_pdftotext(path, layout):
    before = child_cpu()
    args = ["pdftotext"] + (["-layout"] if layout else []) + [path, "-"]
    p = subprocess.run(args, capture_output=True)
    return (p.stdout.decode("utf-8", "replace") if p.returncode == 0 else None), child_cpu() - before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=os.path.join(ROOT, "..", "shared", "corpus", "docs"))
    ap.add_argument("--extractor")
    ap.add_argument("--no-markitdown", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print recall per file")
    args = ap.parse_args()
    exe = args.extractor or next(
        (p for p in (os.path.join(ROOT, "target/release/carbide-extract"),
                     os.path.join(ROOT, "target/debug/carbide-extract")) if os.path.exists(p)), None)
    if not exe:
        sys.exit("build carbide-extract first (cargo build --release -p carbide-ingest)")
    md = None
    if not args.no_markitdown:
        try:
            from markitdown import MarkItDown
            md = MarkItDown()
        except ImportError:
            print("markitdown not installed: skipping the Python peer", file=sys.stderr)

    fmt_of = {"pdf": "pdf", "docx": "docx", "pptx": "pptx", "xlsx": "xlsx", "rtf": "rtf",
              "txt": "txt", "md": "md", "csv": "csv", "tsv": "tsv", "png": "image", "jpg": "image"}
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    for sub in sorted(os.listdir(args.corpus)):
        d = os.path.join(args.corpus, sub)
        if not os.path.isdir(d) or sub == "legacy":
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            fmt = fmt_of.get(name.rsplit(".", 1)[-1].lower())
            if fmt is None or fmt == "image":
                continue
            size = os.path.getsize(path)
            ref = None
            if fmt == "pdf":
                ref, _ = run_pdftotext(path, layout=True)
            elif fmt in ("docx", "pptx", "xlsx"):
                try:
                    ref = xml_text(path)
                except zipfile.BadZipFile:
                    ref = None
            elif fmt in ("txt", "md", "csv", "tsv"):
                ref = decode(path)
            text, cpu = run_carbide(exe, path)
            r = rows[fmt]
            r["bytes"].append(size)
            r["carbide_cpu"].append(cpu)
            if ref and tokens(ref):
                r["carbide_recall"].append(recall(ref, text or ""))
                if args.verbose:
                    print(f"  {name}: recall {r['carbide_recall'][-1]:.3f}", file=sys.stderr)
            if fmt == "pdf":
                _, pcpu = run_pdftotext(path, layout=False)
                r["pdftotext_cpu"].append(pcpu)
            if md is not None:
                t0 = time.process_time()
                try:
                    mtext = md.convert(path).text_content
                except Exception:  # a peer failing on a file scores 0, as in the study
                    mtext = ""
                r["md_cpu"].append(time.process_time() - t0)
                if ref and tokens(ref):
                    r["md_recall"].append(recall(ref, mtext))

    def avg(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else float("nan")

    def mbps(r, key):
        cpu = sum(r.get(key, []))
        return (sum(r["bytes"]) / 1e6 / cpu) if cpu > 0 else float("nan")

    print(f"extractor: {exe}")
    print(f"{'format':7} {'files':>5} {'MB':>6} {'recall carbide':>15} {'recall markitdown':>18} "
          f"{'MB/CPU-s carbide':>17} {'pdftotext':>10} {'markitdown':>11} {'speed x md':>10}")
    for fmt in sorted(rows):
        r = rows[fmt]
        c, m = mbps(r, "carbide_cpu"), mbps(r, "md_cpu")
        print(f"{fmt:7} {len(r['bytes']):5d} {sum(r['bytes'])/1e6:6.2f} {avg(r['carbide_recall']):15.3f} "
              f"{avg(r['md_recall']):18.3f} {c:17.2f} {mbps(r, 'pdftotext_cpu'):10.2f} {m:11.2f} "
              f"{(c / m if m == m and m > 0 else float('nan')):10.1f}")


if __name__ == "__main__":
    main()
