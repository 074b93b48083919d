"""Citation parsing after generation: valid marks resolve to their blocks, others are removed
and counted."""

from __future__ import annotations

from fixtures_answer import LEAVE_BLOCKS, block

from answers.citations import check_citations, resolve_citations, snippet_for


def test_single_and_grouped_marks_are_kept_and_ordered_by_first_use():
    checked = check_citations("Leave is 25 days [2]. Laptops last four years [1, 3].", {1, 2, 3})
    assert checked.text == "Leave is 25 days [2]. Laptops last four years [1, 3]."
    assert checked.cited == [2, 1, 3]
    assert checked.invalid == 0


def test_adjacent_marks_and_ranges():
    checked = check_citations("A [1][3] and B [1-3] and C [2;3].", {1, 2, 3})
    assert checked.cited == [1, 3, 2]
    assert checked.invalid == 0


def test_numbers_outside_the_blocks_are_removed_and_counted():
    checked = check_citations("Leave is 25 days [7]. Carry over five [2, 9]. Done [0].", {1, 2})
    assert checked.text == "Leave is 25 days. Carry over five [2]. Done."
    assert checked.cited == [2]
    assert checked.invalid == 3


def test_removed_mark_mid_sentence_leaves_one_space():
    assert check_citations("Leave [5] is granted.", {1}).text == "Leave is granted."


def test_years_and_non_numeric_brackets_are_not_citations():
    checked = check_citations("In [2024] the [note] said [a] thing [1].", {1})
    assert checked.text == "In [2024] the [note] said [a] thing [1]."
    assert checked.cited == [1]
    assert checked.invalid == 0


def test_labelled_numbers_are_citations_written_the_plain_way():
    checked = check_citations("EUR 62 [n: 2]. Leave [Document 1][doc 3] [source=9]. Not [note 4].", {1, 2, 3})
    assert checked.cited == [2, 1, 3]
    assert checked.invalid == 1  # 9
    assert checked.text == "EUR 62 [2]. Leave [1][3]. Not [note 4]."


def test_reversed_or_huge_ranges_count_each_end():
    checked = check_citations("See [3-1] and [1-500].", {1, 3})
    assert checked.cited == [3, 1]
    assert checked.invalid == 1  # 500


def test_no_citations_at_all():
    checked = check_citations("The documents do not contain the answer.", {1, 2})
    assert checked.cited == [] and checked.invalid == 0


def test_resolve_returns_source_fields_and_chunk_ids():
    text, citations, invalid = resolve_citations(
        "Full-time staff get 25 days of leave [1]. Five days carry over [2]. Wrong [4].",
        LEAVE_BLOCKS,
    )
    assert invalid == 1
    assert "[4]" not in text
    assert [c.n for c in citations] == [1, 2]
    first = citations[0]
    assert first.path == "policies/leave-policy.pdf"
    assert first.title == "Leave policy"
    assert first.page == 1
    assert first.chunk_ids == ["chunk-1-a", "chunk-1-b"]
    assert "25 days" in first.snippet


def test_snippet_centres_on_the_best_matching_sentence():
    sentences = [f"Filler sentence {i} talks about nothing in particular." for i in range(12)]
    sentences[7] = "The rollback job restores the previous image in every zone."
    text = " ".join(sentences)
    snippet = snippet_for(text, {"rollback", "previous", "image"}, max_chars=200)
    assert "rollback job restores" in snippet
    assert snippet.startswith("… ") and snippet.endswith(" …")
    assert len(snippet) <= 204


def test_snippet_of_a_short_block_is_the_whole_block():
    short = block(1, "Laptops are replaced every four years.")
    _, citations, _ = resolve_citations("Every four years [1].", [short])
    assert citations[0].snippet == "Laptops are replaced every four years."


def test_a_mark_after_the_full_stop_belongs_to_the_sentence_before():
    filler = " ".join(f"Filler sentence {i} says nothing of interest here." for i in range(8))
    text = f"{filler} Carried-over days expire on March 31st. {filler}"
    _, citations, _ = resolve_citations("Unused days expire on March 31st. [1]", [block(1, text)])
    assert citations[0].snippet.startswith("… ")
    assert "Carried-over days expire on March 31st." in citations[0].snippet


def test_a_citation_of_a_block_that_does_not_say_the_claim_is_unsupported():
    from answers.citations import unsupported_citations

    hallucinated = "The boiling point of mercury is 357.8°C. This information is found in [3]."
    assert unsupported_citations(hallucinated, LEAVE_BLOCKS) == [3]
    grounded = "According to document [1], full-time employees get 25 days of paid leave."
    assert unsupported_citations(grounded, LEAVE_BLOCKS) == []


def test_uncited_sentences_are_attributed_to_the_block_that_holds_them():
    answer = (
        "A full-time employee receives 25 days of paid annual leave per year. "
        "Up to five unused days can be carried over [2]. "
        "Laptops are replaced every four years.\n"
        "I hope this helps!"
    )
    text, citations, invalid = resolve_citations(answer, LEAVE_BLOCKS, attribute=True)
    assert text == (
        "A full-time employee receives 25 days of paid annual leave per year [1]. "
        "Up to five unused days can be carried over [2]. "
        "Laptops are replaced every four years [3].\n"
        "I hope this helps!"
    )
    assert [(c.n, c.attributed) for c in citations] == [(1, True), (2, False), (3, True)]
    assert "25 days" in citations[0].snippet and invalid == 0


def test_attribution_leaves_unsupported_or_already_cited_sentences_alone():
    unsupported = "Mercury boils at 357 degrees Celsius under normal pressure."
    assert resolve_citations(unsupported, LEAVE_BLOCKS, attribute=True) == (unsupported, [], 0)
    not_covered = "The documents do not say whether every full-time employee receives paid annual leave per year."
    assert resolve_citations(not_covered, LEAVE_BLOCKS, attribute=True) == (not_covered, [], 0)
    cited_after_the_stop = "Every full-time employee receives 25 days of paid leave. [1]"
    text, citations, _ = resolve_citations(cited_after_the_stop, LEAVE_BLOCKS, attribute=True)
    assert text == cited_after_the_stop and [(c.n, c.attributed) for c in citations] == [(1, False)]
    # Without `attribute` (the extractive answer, or CAIRN_LLM_ATTRIBUTE_UNCITED=false) nothing is added.
    assert resolve_citations("Laptops are replaced every four years.", LEAVE_BLOCKS)[1] == []
