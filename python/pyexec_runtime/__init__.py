"""pyexec's Python side: the runner for local execution, the read-only guard, result capture."""
