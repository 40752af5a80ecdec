"""swarmlearn.feedback."""
