"""vibeplane's development and demo platform: everything `vibeplane up` runs on one machine.

Not part of the operator: the local control plane (built from `hack/controlplane/`), MinIO,
the tools installed from the Go module proxy, and the `up`/`down`/`status`/`cluster` commands,
which it adds to the `vibeplane` command through the `vibeplane.commands` entry-point group.
"""
