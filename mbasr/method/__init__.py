"""The paper's method: transcript corruption for text-only items and the five-component mixed batch."""
