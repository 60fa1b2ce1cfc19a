"""The controller runtime: reconcile loop, work queue, object cache, leader election, clock.

It sits on the API client layer (`vibeplane.kube`) and knows no kind: the kinds' reconcilers
(workspace, modeldeployment, vibeapp) plug into it, and `vibeplane.manager` builds it once.
"""
