// Command vibeplane-node runs the Kubernetes node components of the local platform, built from the
// same Kubernetes modules (and the same replace block) as tests/controlplane, so the node and the
// control plane are always one version and share Go's build cache. Each subcommand runs one
// component in its own process, exactly as its upstream binary would.
//
//	vibeplane-node kubelet|kube-proxy [upstream flags...]
//	vibeplane-node version
//
// containerd, runsc, CNI plugins and the policy enforcer are separate programs (their own
// modules or Debian packages); the Python side (the local platform) starts and supervises all.
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream mains do.
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream mains do.
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream mains do.
	"k8s.io/component-base/version"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

const usage = `usage: vibeplane-node COMMAND [flags]

commands:
  kubelet      the kubelet (upstream flags)
  kube-proxy   kube-proxy (upstream flags)
  version      the Kubernetes version this binary was built from
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	command, rest := os.Args[1], os.Args[2:]
	// Upstream commands read os.Args themselves: make each see what its own binary would.
	os.Args = append([]string{command}, rest...)
	switch command {
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", command, usage)
		os.Exit(2)
	}
}
