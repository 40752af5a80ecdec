"""swarmlearn.ops."""
