// CoreDNS with only the plugins the local node's Corefile uses (nodeaddons.py COREFILE).
//
// CoreDNS documents this way of choosing plugins at compile time: its own main imports every
// plugin (core/plugin), including the cloud DNS backends whose SDKs (AWS, Azure, Google) are
// most of a cold build; this one imports six and lists them in CoreDNS's execution order.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// The order of core/dnsserver/zdirectives.go (plugin.cfg), restricted to the plugins above.
var directives = []string{"reload", "ready", "errors", "cache", "kubernetes", "loop"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
