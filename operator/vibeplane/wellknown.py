"""The names the operator and the runtimes must agree on: labels, annotations, the sandbox
taint, the preview runtime's path and environment.

This module imports nothing, so any part of the project can use it. The stdlib-only runtimes
(`runtime/sandbox`, whose preview runtime runs inside the preview image with nothing else
installed) cannot import the operator's package: they keep their own copies, and
`tests/unit/test_wellknown.py` fails when a copy differs from the value here.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "vibeplane.io"

# ---- labels ---------------------------------------------------------------------------------
LABEL_WORKSPACE: Final = "vibeplane.io/workspace"
LABEL_APP: Final = "vibeplane.io/app"
LABEL_MODELDEPLOYMENT: Final = "vibeplane.io/modeldeployment"
LABEL_MODELTRAINING: Final = "vibeplane.io/modeltraining"
LABEL_LEDGER: Final = "vibeplane.io/ledger"
# On a workspace's namespace: "true" keeps its apps' artifacts in S3 when they go.
LABEL_RETAIN: Final = "vibeplane.io/retain-artifacts"
# On the local preview node (the development stand-in for a kubelet).
LABEL_LOCAL_NODE: Final = "vibeplane.io/local-node"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
# On a workspace's idle preview sandbox (its warm pool): "idle" until an app adopts it, and
# never again after (adoption removes it; nothing puts it back).
LABEL_POOL: Final = "vibeplane.io/pool"

# ---- annotations ----------------------------------------------------------------------------
ANNOTATION_PREFIX: Final = "vibeplane.io"
# The digest of what the operator last applied to an object (server-side apply skips no-ops).
ANNOTATION_APPLIED: Final = "vibeplane.io/applied"
ANNOTATION_WAKE: Final = "vibeplane.io/wake"
ANNOTATION_WORKSPACE_UID: Final = "vibeplane.io/workspace-uid"
# Written by the local preview node on a pod: the host port its preview listens on.
ANNOTATION_LOCAL_PORT: Final = "vibeplane.io/local-port"
# On a ModelDeployment's outcomes ConfigMap (platform namespace): whose counts, namespace/name.
ANNOTATION_MODELDEPLOYMENT: Final = "vibeplane.io/model-deployment"
# On a warm pool's sandbox: the digest of the preview pod spec it was started from (another
# digest: stale, replaced).
ANNOTATION_TEMPLATE: Final = "vibeplane.io/template"

# ---- finalizers -----------------------------------------------------------------------------
# Our one finalizer: a VibeApp's objects in S3 are removed before the app goes.
FINALIZER: Final = "vibeplane.io/artifacts"
# Kopf's own, distinct from ours: Kopf removes its finalizer from objects that need none (we
# register no handler that does), and it must never take ours with it.
KOPF_FINALIZER: Final = "vibeplane.io/kopf"

# ---- the sandbox ----------------------------------------------------------------------------
# Nodes that run previews under gVisor carry this taint; previews tolerate it.
SANDBOX_TAINT_KEY: Final = "vibeplane.io/sandbox"
SANDBOX_TAINT_VALUE: Final = "gvisor"
SANDBOX_TAINT_EFFECT: Final = "NoSchedule"

# ---- the preview runtime --------------------------------------------------------------------
# Where the preview image (and the local node's mount) holds the stdlib-only preview runtime.
PREVIEW_RUNTIME_DIR: Final = "/opt/vibeplane/vibeplane_sandbox"
# Its environment: the bundle to serve, its digest, and the port to listen on.
ENV_BUNDLE_URL: Final = "BUNDLE_URL"
ENV_BUNDLE_SHA256: Final = "BUNDLE_SHA256"
ENV_PORT: Final = "PORT"
# Revisions arrive by delivery: orders signed with the platform's key (the pod holds the
# public half), POSTed to the runtime's revision path (vibeplane.vibeapp.delivery).
ENV_DELIVERY_KEY: Final = "VIBEPLANE_DELIVERY_KEY"
ENV_POD_NAMESPACE: Final = "POD_NAMESPACE"
ENV_POD_NAME: Final = "POD_NAME"
ENV_POD_UID: Final = "POD_UID"
REVISION_PATH: Final = "/__vibeplane/revision"
READY_PATH: Final = "/__vibeplane/ready"
SIGNATURE_HEADER: Final = "X-Vibeplane-Signature"
