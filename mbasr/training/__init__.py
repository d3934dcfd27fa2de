"""Training: the loop of stages 1 and 2, optimisers, and stage 0 (the `tiny` preset's own LM)."""
