"""Scoring (docs/paper.md "System", rows "decoding" and "scoring"): WER, confidence intervals, paired tests."""
