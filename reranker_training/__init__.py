"""Training Cairn's own cross-encoder reranker from packaged weights and an indexed corpus.

No cross-encoder weights can be downloaded here, so the reranker is fine-tuned from the
packaged MiniLM on (query, positive, hard negatives) pairs mined from the index itself:
`mining` finds the pairs, `training` fine-tunes and checkpoints, `model_card` records what
went in, `cli` is `cairn train-reranker`.
"""
