"""Tools outside the study: building offline pretrained weights; the TTS engine server."""
