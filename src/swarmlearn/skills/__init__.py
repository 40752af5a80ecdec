"""swarmlearn.skills."""
