"""The local Kubernetes control plane: built from the Kubernetes Go modules, run as processes.

There is no container engine on the machines this project develops and tests on, so a real
control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) is built from
hack/controlplane/ and supervised from here. `vibeplane cluster up|down|status|kubeconfig`
and the pytest fixtures are thin wrappers over `vibeplane_dev.cluster.local`.
"""
