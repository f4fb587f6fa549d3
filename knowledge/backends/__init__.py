"""Embedding backends, one per file; heavy imports stay inside each backend's constructor."""
