// cni-driver drives CNI plugin chains through the real libcni library (the
// same client library containerd and CRI-O use), so integration tests
// exercise a real CNI runtime rather than a hand-rolled invocation.
//
// Usage:
//
//	cni-driver <add|check|del> --conflist FILE --netns PATH --container-id ID
//	           [--ifname eth0] [--args "K=V;K2=V2"] [--cache-dir DIR]
//
// Plugins are searched in $CNI_PATH (colon separated), defaulting to
// /opt/cni/bin:/usr/lib/cni.
//
// On success, "add" prints the final result (converted to the conflist's
// cniVersion) as JSON on stdout; "check" and "del" print nothing.
// On failure the error is printed to stderr; if it is a CNI *types.Error its
// JSON form ({"code":..,"msg":..,"details":..}) is also printed on stdout.
// The exit status is 0 on success, 1 on a CNI/runtime error and 2 on a
// usage error.
//
// Built in GOPATH mode against Debian's golang-github-appc-cni-dev; see
// scripts/build-driver.sh.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const (
	defaultCNIPath  = "/opt/cni/bin:/usr/lib/cni"
	defaultCacheDir = "/var/lib/cni"
	callTimeout     = 60 * time.Second
)

const usageText = `usage: cni-driver <add|check|del> --conflist FILE --netns PATH --container-id ID
                  [--ifname eth0] [--args "K=V;K2=V2"] [--cache-dir DIR]

Plugins are looked up in $CNI_PATH (colon separated, default ` + defaultCNIPath + `).
`

func usageError(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "cni-driver: "+format+"\n", a...)
	fmt.Fprint(os.Stderr, usageText)
	os.Exit(2)
}

// parseArgs turns "K=V;K2=V2" into [][2]string{{"K","V"},{"K2","V2"}}.
// Empty segments are ignored; values may themselves contain '='.
func parseArgs(s string) ([][2]string, error) {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		parts := strings.SplitN(kv, "=", 2)
		if len(parts) != 2 || parts[0] == "" {
			return nil, fmt.Errorf("invalid --args element %q (want KEY=VALUE)", kv)
		}
		out = append(out, [2]string{parts[0], parts[1]})
	}
	return out, nil
}

func pluginPaths() []string {
	env := os.Getenv("CNI_PATH")
	if env == "" {
		env = defaultCNIPath
	}
	var paths []string
	for _, p := range strings.Split(env, ":") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// fail reports err and exits 1. A *types.Error anywhere in the wrap chain
// (libcni wraps plugin errors with %w) is additionally emitted as JSON on
// stdout so callers can assert on the CNI error code.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "cni-driver: %v\n", err)
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		if b, merr := json.Marshal(cniErr); merr == nil {
			fmt.Fprintln(os.Stdout, string(b))
		}
	}
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		usageError("missing command")
	}
	cmd := os.Args[1]
	switch cmd {
	case "add", "check", "del":
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usageText)
		return
	default:
		usageError("unknown command %q", cmd)
	}

	fs := flag.NewFlagSet("cni-driver "+cmd, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usageText) }
	conflist := fs.String("conflist", "", "path to the .conflist file")
	netns := fs.String("netns", "", "path to the network namespace (e.g. /run/netns/foo)")
	containerID := fs.String("container-id", "", "container ID")
	ifname := fs.String("ifname", "eth0", "interface name inside the container")
	argsStr := fs.String("args", "", `CNI_ARGS as "K=V;K2=V2"`)
	cacheDir := fs.String("cache-dir", defaultCacheDir, "libcni result cache directory")
	if err := fs.Parse(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() != 0 {
		usageError("unexpected arguments: %v", fs.Args())
	}
	if *conflist == "" {
		usageError("--conflist is required")
	}
	if *netns == "" {
		usageError("--netns is required")
	}
	if *containerID == "" {
		usageError("--container-id is required")
	}
	if *ifname == "" {
		usageError("--ifname must not be empty")
	}
	pluginArgs, err := parseArgs(*argsStr)
	if err != nil {
		usageError("%v", err)
	}

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(fmt.Errorf("loading conflist %s: %w", *conflist, err))
	}

	rt := &libcni.RuntimeConf{
		ContainerID: *containerID,
		NetNS:       *netns,
		IfName:      *ifname,
		Args:        pluginArgs,
	}
	cni := libcni.NewCNIConfigWithCacheDir(pluginPaths(), *cacheDir, nil)

	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()

	switch cmd {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			cancel()
			fail(err)
		}
		if res == nil {
			cancel()
			fail(errors.New("add succeeded but no result was returned"))
		}
		// The last plugin's result may be in an older version; report it in
		// the conflist's cniVersion, as a runtime would see it.
		if list.CNIVersion != "" {
			conv, err := res.GetAsVersion(list.CNIVersion)
			if err != nil {
				cancel()
				fail(fmt.Errorf("converting result to cniVersion %s: %w", list.CNIVersion, err))
			}
			res = conv
		}
		if err := res.PrintTo(os.Stdout); err != nil {
			cancel()
			fail(fmt.Errorf("printing result: %w", err))
		}
		fmt.Fprintln(os.Stdout)
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			cancel()
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			cancel()
			fail(err)
		}
	}
}
