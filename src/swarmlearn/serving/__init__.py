"""swarmlearn.serving."""
