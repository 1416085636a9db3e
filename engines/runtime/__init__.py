"""Runtime backends: one ``encode(windows) -> embeddings`` call, whichever artifact holds the encoder."""
