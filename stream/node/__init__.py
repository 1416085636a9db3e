"""The live node: source -> tracker -> ring buffers -> batcher -> encoder -> matcher -> ZeroMQ events."""
