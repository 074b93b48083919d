"""Sentence compression of context blocks with the real dense encoder: the sentences that
matter to the question are kept, in order, within the budget; gaps are marked; through the
search service, the context stays within its budget and holds only the documents' sentences."""

from __future__ import annotations

from fixtures_answer import block, index_corpus
from fixtures_retrieval import PUBLIC

from retrieval.compress import GAP, SentenceCompressor
from retrieval.context import FunctionCounter
from retrieval.search_schemas import ContextRequest

WORDS = FunctionCounter(lambda text: len(text.split()))

TRAVEL = block(
    1,
    "The office opens at eight. Hotel costs in London are reimbursed up to GBP 190 per night. "
    "The canteen serves lunch from noon. Parking must be booked a day ahead.\n"
    "Trains are preferred for trips under 500 km.",
    path="intranet/travel.html",
)
LAPTOP = block(2, "Laptops are replaced every four years. Broken screens are repaired by IT.", path="it/faq.txt")


def test_the_sentences_closest_to_the_question_are_kept_in_order(encoders):
    compressor = SentenceCompressor(encoders[0], WORDS)
    out = compressor.compress("What is the hotel limit per night in London?", [TRAVEL, LAPTOP], budget=20)
    assert [b.n for b in out] == list(range(1, len(out) + 1))  # renumbered
    assert "GBP 190 per night" in out[0].text
    assert "canteen" not in out[0].text  # off the question, and the budget is short
    assert sum(b.tokens for b in out) <= 20 + 2 * len(out)  # ellipses aside
    # Every kept sentence is the document's own, in the document's order.
    kept = [s for s in out[0].text.replace(GAP, "|").replace("…", "|").split("|") if s.strip()]
    positions = [TRAVEL.text.index(s.strip()) for s in kept]
    assert positions == sorted(positions)


def test_each_block_keeps_its_best_sentence_first_and_a_block_that_does_not_fit_goes(encoders):
    compressor = SentenceCompressor(encoders[0], WORDS)
    both = compressor.compress("How often are laptops replaced and hotels paid?", [TRAVEL, LAPTOP], budget=22)
    assert len(both) == 2 and "replaced every four years" in both[1].text
    one = compressor.compress("How often are laptops replaced?", [TRAVEL, LAPTOP], budget=7)
    assert [b.path for b in one] == ["it/faq.txt"] and one[0].n == 1
    whole = compressor.compress("anything", [LAPTOP], budget=1000)
    assert whole[0].text == LAPTOP.text  # nothing left out, nothing marked


def test_the_service_compresses_within_the_budget(tmp_path, encoders, corpus_dir):
    from retrieval.rerank import NoReranker
    from retrieval.service import SearchService

    settings, store = index_corpus(tmp_path / "index", corpus_dir, encoders)
    plain = SearchService(settings, store, *encoders, NoReranker())
    request = ContextRequest(query="How many vacation days can be carried over?", token_budget=120, rerank=False)
    try:
        before = plain.context(request, PUBLIC)
        compressing = SearchService(
            settings.model_copy(update={"context_compression": True}), store, *encoders, NoReranker()
        )
        after = compressing.context(request, PUBLIC)
    finally:
        plain.close()
    assert after.blocks and after.tokens_used <= 120 + 2 * len(after.blocks)
    assert "compress" in after.timings_ms
    # Drawn from twice the budget: at least the documents assembled without compression.
    assert {b.doc_id for b in before.blocks} <= {b.doc_id for b in after.blocks}
    originals = {b.doc_id for b in before.blocks} | {h.doc_id for h in after.hits}
    assert all(b.doc_id in originals for b in after.blocks)
