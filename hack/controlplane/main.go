// Command vibeplane-controlplane is a real Kubernetes control plane for machines without a
// container engine: one binary, built from the Kubernetes Go modules, whose subcommands each run
// one component in its own process (feature gates, klog and the metrics registries are
// process-global, so components must never share a process).
//
//	vibeplane-controlplane etcd --data-dir DIR --client-url URL --peer-url URL
//	vibeplane-controlplane apiserver|controller-manager|scheduler|kubectl [upstream flags...]
//	vibeplane-controlplane certs --dir DIR
//	vibeplane-controlplane version
//
// The Python side (vibeplane.cluster) starts and supervises these processes.
package main

import (
	"fmt"
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream's kube-apiserver and controller-manager do.

	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream mains do.
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream mains do.
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream mains do.
)

const usage = `usage: vibeplane-controlplane COMMAND [flags]

commands:
  etcd                 embedded etcd 3.6 (flags: --data-dir --client-url --peer-url)
  apiserver            kube-apiserver (upstream flags)
  controller-manager   kube-controller-manager (upstream flags)
  scheduler            kube-scheduler (upstream flags)
  kubectl              kubectl of the same Kubernetes version
  certs                CA, serving, client and service-account keys (flags: --dir)
  version              the Kubernetes version this binary was built from
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	command, rest := os.Args[1], os.Args[2:]
	// Upstream commands read os.Args themselves (cobra, kubectl's plugin handler): make each
	// subcommand see exactly what its own binary would.
	os.Args = append([]string{command}, rest...)
	switch command {
	case "etcd":
		os.Exit(runEtcd(rest))
	case "apiserver", "controller-manager", "scheduler", "kubectl":
		os.Exit(runComponent(command))
	case "certs":
		os.Exit(runCerts(rest))
	case "version":
		fmt.Println(kubernetesVersion())
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", command, usage)
		os.Exit(2)
	}
}
