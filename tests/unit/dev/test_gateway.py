from __future__ import annotations

from vibeplane_dev.cluster import gateway


def test_the_operators_url_is_reached_through_the_relay_port() -> None:
    url = "http://todo-ws-demo.vibeplane.localhost/"
    assert gateway.through_relay(url, 18880) == "http://todo-ws-demo.vibeplane.localhost:18880/"
    assert gateway.through_relay("http://h.x:80", 9) == "http://h.x:9/"


def test_the_gateway_and_front_service_match_what_the_operator_routes_to() -> None:
    docs = {d["kind"]: d for d in gateway.gateway_manifests("10.250.0.1", 18890)}
    listener = docs["Gateway"]["spec"]["listeners"][0]
    assert (docs["Gateway"]["metadata"]["namespace"], listener["name"]) == (
        "vibeplane-gateway",
        "http",
    )
    assert docs["Service"]["metadata"] == {
        "name": "vibeplane-frontdoor",
        "namespace": "vibeplane-system",
    }
    assert docs["EndpointSlice"]["endpoints"][0]["addresses"] == ["10.250.0.1"]
    assert docs["EndpointSlice"]["ports"][0]["port"] == 18890


def test_with_the_front_service_in_the_chart_the_gateway_names_no_backend_of_its_own() -> None:
    """`make up`: the chart's Service (a selector on the front service's pod) is the only
    one; a Service or EndpointSlice applied here would compete with the release's."""
    docs = gateway.gateway_manifests("10.250.0.1", 18890, host_front_service=False)
    assert [d["kind"] for d in docs] == ["Namespace", "GatewayClass", "Gateway"]
    assert docs[0]["metadata"]["name"] == gateway.GATEWAY_NAMESPACE
