"""Corpus preparation: synthetic domain text, general English, TTS audio, acoustic conditions,
manifests and bring-your-own-data readers (the paper's "Data" section, rebuilt offline)."""
