"""swarmlearn.store."""
