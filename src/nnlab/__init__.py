"""nnlab: a reproducible, tracked deep-learning study."""
