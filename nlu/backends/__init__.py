"""Language-model backends of the nlu room, one per file; heavy imports stay inside each constructor."""
