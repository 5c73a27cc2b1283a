"""Data side of the project: the canonical table of judged pairs, its sources, splits,
feature transforms, the tokenisation cache and batching."""
