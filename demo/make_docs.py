#!/usr/bin/env python3
"""Writes the demo's Word and PDF documents (product/roadmap-2027.docx, product/pricing-faq.pdf)
with the standard library only, so `make demo` needs no document tooling. The texts are ours."""
import os
import sys
import zipfile
from xml.sax.saxutils import escape

ROADMAP = [
    ("h", "Northwind product roadmap 2027"),
    ("p", "In 2027 Northwind Sync adds live folder sharing between workspaces and a mobile app "
          "for offline review."),
    ("h", "First half"),
    ("p", "Live folder sharing ships in March. Offline review for iOS and Android ships in June, "
          "with end-to-end encryption of cached files."),
    ("h", "Second half"),
    ("p", "Northwind Search gets answer citations with page numbers in September and a "
          "self-hosted edition for regulated customers in November."),
]

FAQ = [
    "Northwind pricing FAQ",
    "How much does Northwind Sync cost? The Team plan costs 8 EUR per user per month,",
    "billed annually. The Business plan costs 15 EUR per user per month.",
    "Is there a free trial? Yes, every plan starts with a 30-day free trial.",
    "Do you offer discounts for non-profits? Registered non-profits get 50 percent off.",
]


def docx(path):
    body = []
    for kind, text in ROADMAP:
        style = '<w:pPr><w:pStyle w:val="Heading1"/></w:pPr>' if kind == "h" else ""
        body.append(f'<w:p>{style}<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>')
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                f'<w:body>{"".join(body)}</w:body></w:document>')
    types = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
             '</Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
            '</Relationships>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", document)


def pdf(path):
    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    lines = ["BT", "/F1 12 Tf", "72 740 Td", "16 TL"]
    for i, text in enumerate(FAQ):
        lines.append(f"({esc(text)}) Tj T*" if i else f"({esc(text)}) Tj T* T*")
    lines.append("ET")
    stream = "\n".join(lines).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    with open(path, "wb") as f:
        f.write(out)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "docs")
    os.makedirs(os.path.join(root, "product"), exist_ok=True)
    docx(os.path.join(root, "product", "roadmap-2027.docx"))
    pdf(os.path.join(root, "product", "pricing-faq.pdf"))


if __name__ == "__main__":
    main()
