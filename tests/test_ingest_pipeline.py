"""Ingesting the sample corpus (every format) on both backends: metadata, structure, chunk
sizes and overlap, page chrome, access groups."""

from __future__ import annotations

from collections import defaultdict

from retrieval.index_schema import files_collection


def test_every_sample_file_is_indexed(sample_index):
    ingester, report = sample_index
    assert report.failures == []
    assert report.files.added == 14  # 13 documents and the README
    types = {c["file_type"] for c in ingester.chunks()}
    assert {"html", "md", "pdf", "docx", "txt", "pptx", "eml"} <= types
    records = list(ingester.store.scroll(files_collection(ingester.settings.collection)))
    assert len(records) == 14
    assert report.chunks.total == report.chunks.written == len(ingester.chunks())


def test_chunk_metadata(sample_index):
    ingester, _ = sample_index
    chunks = ingester.chunks(path="intranet/travel-expense-policy.html")
    assert chunks, "the travel policy has chunks"
    first = min(chunks, key=lambda c: c["chunk_index"])
    assert first["title"] == "Travel and Expense Policy"
    assert first["source"] == "sample"
    assert first["groups"] == ["public"]
    assert first["dirs"] == ["", "intranet"]
    assert len(first["content_hash"]) == 64
    assert first["modified"].endswith("+00:00")
    assert sorted(c["chunk_index"] for c in chunks) == list(range(len(chunks)))
    assert any(c["section"].startswith("Travel and Expense Policy > ") for c in chunks)


def test_pdf_pages_and_docx_headings(sample_index):
    ingester, _ = sample_index
    pdf = ingester.chunks(path="product/nr7-product-faq.pdf")
    assert {c["page"] for c in pdf} == {1, 2, 3}
    service_life = [c for c in pdf if "35,000 operating hours" in c["text"]]
    assert service_life and all(c["page"] == 3 for c in service_life)
    docx = ingester.chunks(path="hr/salary-bands-2026.docx")
    assert any(" > " in c["section"] or c["section"] for c in docx)


def test_html_page_chrome_is_dropped(sample_index):
    ingester, _ = sample_index
    for path in ("intranet/travel-expense-policy.html", "intranet/remote-work-policy.html"):
        text = "\n".join(c["text"] for c in ingester.chunks(path=path))
        assert text, path
        for chrome in ("Contents | Index", "Sign out", "All rights reserved", "Cookie settings"):
            assert chrome not in text, f"{chrome!r} left in {path}"


def test_access_groups_from_acl_file(sample_index):
    ingester, _ = sample_index
    groups = defaultdict(set)
    for c in ingester.chunks():
        groups[c["path"].split("/")[0]].update(c["groups"])
    assert groups["hr"] == {"hr"}
    assert groups["exec"] == {"exec"}
    assert groups["intranet"] == {"public"}


def test_chunks_fit_the_model_and_overlap(sample_index, encoders):
    ingester, _ = sample_index
    dense, _ = encoders
    limit = dense.max_seq_length - 2  # [CLS] and [SEP]
    by_doc = defaultdict(list)
    for c in ingester.chunks():
        by_doc[c["doc_id"]].append(c)
        header = c["title"] if not c["section"] else f"{c['title']} > {c['section']}"
        assert dense.count_tokens(header + "\n" + c["text"]) <= limit
        assert dense.count_tokens(c["text"]) <= ingester.settings.chunk_tokens
    overlapping = 0
    for chunks in by_doc.values():
        chunks.sort(key=lambda c: c["chunk_index"])
        for a, b in zip(chunks, chunks[1:]):
            if a["section"] == b["section"] and a["page"] == b["page"]:
                tail = " ".join(a["text"].split()[-4:])
                overlapping += tail in b["text"]
    assert overlapping > 0, "consecutive chunks of one section share their overlap"
