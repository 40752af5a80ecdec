"""swarmlearn.llm."""
