"""swarmlearn.training."""
