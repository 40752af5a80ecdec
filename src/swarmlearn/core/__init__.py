"""swarmlearn.core."""
