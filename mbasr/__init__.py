"""mbasr: mixed-batch domain adaptation of LLM-based ASR, a companion to Bañeras-Roux et al.,
"Closing the Speech-Text Gap with Limited Audio" (Interspeech 2026)."""

__version__ = "0.1.0"
