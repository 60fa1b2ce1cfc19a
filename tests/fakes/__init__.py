"""Fakes for unit tests, injected where the operator injects the real thing: the Kubernetes
client (`kube.FakeKube` for `vibeplane.kube.client.KubeClient`) and the clock
(`clock.FakeClock` for `vibeplane.controller.clock.Clock`)."""
