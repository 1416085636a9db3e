"""The identity gallery: a durable SQLite store of identities and embeddings, and a search index over it."""
