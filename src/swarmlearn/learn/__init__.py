"""swarmlearn.learn."""
