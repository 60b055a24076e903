// kube-proxy beside mncni, the representative combination for `make test`: bridge mode over
// VXLAN (Service replies cross the tunnel; bridged Service replies need br_netfilter), with
// kube-proxy's iptables layout and then its nftables layout. The other mode x routing
// combinations are in kube-proxy-coexist.matrix.test.ts (`make test-matrix`).
import { afterAll, setDefaultTimeout } from "bun:test";
import { downAll } from "./lab-cli.ts";
import { kubeProxySuite } from "./kube-proxy-coexist.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

kubeProxySuite("bridge", "vxlan", ["iptables", "nftables"]);
