"""swarmlearn.rl."""
