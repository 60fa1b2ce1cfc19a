"""vibeplane-sandbox: the local preview node, the development stand-in for kubelet + containerd
+ runsc.

Machines without a container engine (the project's own) still run previews in gVisor:
`vibeplane-node run` registers a Node, runs the pods the scheduler binds to it as runsc
sandboxes (an OCI bundle per container, the host's `/` read-only as root filesystem, the
host's network stack on a loopback port per pod), reports their status like kubelet, and
serves their logs to `kubectl logs`. On a real cluster, kubelet and containerd's runsc shim do
this job and this package is not used; `preview` (the runtime a preview container runs) is used
in both.

This module imports nothing: `vibeplane_sandbox.preview` runs inside sandboxes on the host's
Python with the standard library only.
"""
