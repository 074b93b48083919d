"""Cited answers: LLM providers with a fallback chain, a fenced prompt, checked citations,
streaming and follow-up rewriting (`AnswerService` in answers.service)."""
