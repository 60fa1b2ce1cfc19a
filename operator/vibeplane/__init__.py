"""vibeplane: a Kubernetes control plane for self-hosted vibe-coding platforms.

Workspaces (tenants), ModelDeployments (the models the platform generates with) and VibeApps
(prompts that become sandboxed previews) are custom resources reconciled by a Kopf operator.
"""

__version__ = "0.1.0"
