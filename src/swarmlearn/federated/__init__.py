"""swarmlearn.federated."""
