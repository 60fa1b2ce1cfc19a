"""The Workspace controller: a tenant's namespace and everything that isolates it."""
