// Command cnidriver runs one CNI operation through libcni, the library container runtimes use,
// so integration tests exercise plugins exactly as a runtime would: libcni injects
// name/cniVersion/prevResult, caches ADD results for CHECK/DEL, refuses CHECK before 0.4.0 and
// decodes plugin results by version.
//
// README: build with tests/cnidriver.py (GOPATH mode against Debian's golang-github-appc-cni-dev,
// CGO_ENABLED=0), then
//
//	CNI_PATH=/usr/lib/cni cnidriver add|del|check|version|validate -conf net.conf [-list]
//	    [-id CONTAINERID] [-netns PATH] [-ifname eth0] [-args 'K=V;K=V'] [-cap JSON]
//	    [-cache DIR] [-type PLUGIN]
//
// add prints the result (converted to the config's cniVersion) as JSON; version prints the
// plugin's version info; validate prints the capabilities. del and check print nothing.
// Exit 0 on success; 2 with {"code","msg","details"} on stdout when the plugin reported a CNI
// error; 3 with {"code":-1,"msg"} for any other failure (including bad usage).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

type options struct {
	verb, conf, id, netns, ifname, args, capabilities, cache, pluginType string
	list                                                                 bool
}

func parseOptions(argv []string) (*options, error) {
	if len(argv) < 1 {
		return nil, errors.New("usage: cnidriver add|del|check|version|validate -conf PATH [flags]")
	}
	o := &options{verb: argv[0]}
	fs := flag.NewFlagSet("cnidriver "+o.verb, flag.ContinueOnError)
	fs.StringVar(&o.conf, "conf", "", "network config file (.conf, or .conflist with -list)")
	fs.BoolVar(&o.list, "list", false, "the config is a conflist (implied by a .conflist suffix)")
	fs.StringVar(&o.id, "id", "", "container ID (CNI_CONTAINERID)")
	fs.StringVar(&o.netns, "netns", "", "network namespace path (CNI_NETNS)")
	fs.StringVar(&o.ifname, "ifname", "eth0", "interface name (CNI_IFNAME)")
	fs.StringVar(&o.args, "args", "", "CNI_ARGS as K=V;K=V")
	fs.StringVar(&o.capabilities, "cap", "", "capability args as a JSON object")
	fs.StringVar(&o.cache, "cache", "", "libcni cache directory (keeps tests out of /var/lib/cni)")
	fs.StringVar(&o.pluginType, "type", "", "plugin type for version (default: the config's type)")
	if err := fs.Parse(argv[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.list = o.list || strings.HasSuffix(o.conf, ".conflist")
	return o, nil
}

func (o *options) runtimeConf() (*libcni.RuntimeConf, error) {
	rt := &libcni.RuntimeConf{ContainerID: o.id, NetNS: o.netns, IfName: o.ifname}
	if o.args != "" {
		for _, pair := range strings.Split(o.args, ";") {
			key, value, ok := strings.Cut(pair, "=")
			if !ok {
				return nil, fmt.Errorf("-args: %q is not K=V", pair)
			}
			rt.Args = append(rt.Args, [2]string{key, value})
		}
	}
	if o.capabilities != "" {
		if err := json.Unmarshal([]byte(o.capabilities), &rt.CapabilityArgs); err != nil {
			return nil, fmt.Errorf("-cap: %w", err)
		}
	}
	return rt, nil
}

// run performs the verb and returns what to print on success (nil for del/check).
func run(o *options) (interface{}, error) {
	if o.conf == "" {
		return nil, errors.New("-conf is required")
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(os.Getenv("CNI_PATH"), ":"), o.cache, nil)
	rt, err := o.runtimeConf()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()

	var list *libcni.NetworkConfigList
	var single *libcni.NetworkConfig
	var cniVersion, firstType string
	if o.list {
		if list, err = libcni.ConfListFromFile(o.conf); err != nil {
			return nil, err
		}
		cniVersion = list.CNIVersion
		if len(list.Plugins) > 0 {
			firstType = list.Plugins[0].Network.Type
		}
	} else {
		if single, err = libcni.ConfFromFile(o.conf); err != nil {
			return nil, err
		}
		cniVersion, firstType = single.Network.CNIVersion, single.Network.Type
	}

	switch o.verb {
	case "add":
		var result types.Result
		if list != nil {
			result, err = cni.AddNetworkList(ctx, list, rt)
		} else {
			result, err = cni.AddNetwork(ctx, single, rt)
		}
		if err != nil {
			return nil, err
		}
		return result.GetAsVersion(cniVersion)
	case "del":
		if list != nil {
			return nil, cni.DelNetworkList(ctx, list, rt)
		}
		return nil, cni.DelNetwork(ctx, single, rt)
	case "check":
		if list != nil {
			return nil, cni.CheckNetworkList(ctx, list, rt)
		}
		return nil, cni.CheckNetwork(ctx, single, rt)
	case "version":
		pluginType := o.pluginType
		if pluginType == "" {
			pluginType = firstType
		}
		info, err := cni.GetVersionInfo(ctx, pluginType)
		if err != nil {
			return nil, err
		}
		return map[string]interface{}{"supportedVersions": info.SupportedVersions()}, nil
	case "validate":
		var capabilities []string
		if list != nil {
			capabilities, err = cni.ValidateNetworkList(ctx, list)
		} else {
			capabilities, err = cni.ValidateNetwork(ctx, single)
		}
		if err != nil {
			return nil, err
		}
		return map[string]interface{}{"capabilities": capabilities}, nil
	}
	return nil, fmt.Errorf("unknown verb %q (want add, del, check, version or validate)", o.verb)
}

func printJSON(value interface{}) {
	encoded, err := json.Marshal(value)
	if err != nil {
		fmt.Printf("{\"code\":-1,\"msg\":%q}\n", "encoding output: "+err.Error())
		os.Exit(3)
	}
	fmt.Printf("%s\n", encoded)
}

func main() {
	o, err := parseOptions(os.Args[1:])
	var output interface{}
	if err == nil {
		output, err = run(o)
	}
	var cniErr *types.Error
	switch {
	case errors.As(err, &cniErr):
		printJSON(cniErr)
		os.Exit(2)
	case err != nil:
		printJSON(map[string]interface{}{"code": -1, "msg": err.Error()})
		os.Exit(3)
	case output != nil:
		printJSON(output)
	}
}
