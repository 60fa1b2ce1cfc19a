"""Everything that talks to the Kubernetes API, and the pure helpers for what it writes."""
