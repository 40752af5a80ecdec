"""swarmlearn.envs."""
