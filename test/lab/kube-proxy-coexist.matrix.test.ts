// kube-proxy beside mncni, the combinations `make test` leaves out (it runs bridge over
// VXLAN): bridge over host-gw, routed over host-gw and over VXLAN, each with kube-proxy's
// iptables and nftables layouts. Run by `make test-matrix`.
import { afterAll, setDefaultTimeout } from "bun:test";
import { downAll } from "./lab-cli.ts";
import { kubeProxySuite } from "./kube-proxy-coexist.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

kubeProxySuite("bridge", "host-gw", ["iptables", "nftables"]);
kubeProxySuite("routed", "host-gw", ["iptables", "nftables"]);
kubeProxySuite("routed", "vxlan", ["iptables", "nftables"]);
