// `mncni lab ...`: the subcommand table; each subcommand's flags and output are in
// src/cli/lab-*.ts, the work in src/lab/.
import { DEFAULT_LAB } from "../lab/topology.ts";
import { NODE } from "./lab-node.ts";
import { POD } from "./lab-pod.ts";
import { reported } from "./lab-common.ts";
import { cmdCheck } from "./lab-check.ts";
import { cmdExec } from "./lab-exec.ts";
import { cmdExplain } from "./lab-explain.ts";
import { cmdInspect } from "./lab-inspect.ts";
import { cmdIpam } from "./lab-ipam.ts";
import { cmdList } from "./lab-list.ts";
import { cmdPods } from "./lab-pods.ts";
import { cmdStatus } from "./lab-status.ts";
import { cmdTrace } from "./lab-trace.ts";
import { cmdEcho, cmdHttp, cmdProbe, cmdRr } from "./lab-internal.ts";
import { cmdDns } from "./lab-dns.ts";
import { cmdDown } from "./lab-down.ts";
import { cmdUp } from "./lab-up.ts";
import { cmdApply, cmdDelete } from "./lab-apply.ts";
import { LABEL } from "./lab-label.ts";
import { SERVICE } from "./lab-service.ts";
import { dispatch, type Group } from "./subcommands.ts";

const LAB: Group = {
  name: "mncni lab",
  intro: "A multi-node Kubernetes-shaped cluster in network namespaces (run as root).",
  bareIsHelp: true,
  verbs: {
    up: { summary: "build a lab (nodes, pods, external host)", run: reported("up", cmdUp) },
    check: { summary: "TCP from every pod/node to every pod and the external host; with --policy-ports, the policy truth table", run: reported("check", cmdCheck) },
    status: { args: "[<node>]", summary: "nodes, pods, external host, directories; with a node, `mncni status` on it", run: reported("status", cmdStatus) },
    list: { summary: "the labs on this machine", run: reported("list", cmdList) },
    exec: { args: "<target> [-- cmd...]", summary: "run a command (default: sh) in a node, pod (node/pod), ext, rtr or sw", run: reported("exec", cmdExec) },
    node: { args: "add|remove|restart-agent|mtu", summary: "change nodes", run: reported("node", (argv) => dispatch(NODE, argv)) },
    pods: { summary: "the lab's pods: namespace, name, node, addresses, labels", run: reported("pods", cmdPods) },
    pod: { args: "add|remove", summary: "change pods", run: reported("pod", (argv) => dispatch(POD, argv)) },
    inspect: { args: "<node>[/<pod>]", summary: "how a node's pods are wired, and problems found", run: reported("inspect", cmdInspect) },
    ipam: { args: "<node>", summary: "a node's IPAM ranges, use and leaks (`mncni ipam show` on it)", run: reported("ipam", cmdIpam) },
    explain: { args: "<src> <dst>", summary: "the path of a packet hop by hop, confirmed by a traced probe", run: reported("explain", cmdExplain) },
    trace: { args: "<node>", summary: "a node's CNI calls (--follow: live) with p50/p99 per verb", run: reported("trace", cmdTrace) },
    service: { args: "add|list|remove", summary: "Services: cluster IPs, node ports, LoadBalancer addresses, EndpointSlices from pod labels", run: reported("service", (argv) => dispatch(SERVICE, argv)) },
    label: { args: "pod|namespace", summary: "set and remove labels of pods and namespaces (as kubectl label)", run: reported("label", (argv) => dispatch(LABEL, argv)) },
    apply: { args: "-f FILE|DIR", summary: "create or replace NetworkPolicies, ClusterNetworkPolicies, Namespaces", run: reported("apply", cmdApply) },
    delete: { args: "-f FILE|DIR", summary: "delete the objects of manifests", run: reported("delete", cmdDelete) },
    flows: { summary: "policy verdicts logged by the agents (denied flows, naming the policy)", run: reported("flows", async (argv) => (await import("./lab-flows.ts")).cmdFlows(argv)) },
    ui: { summary: "serve a web page of the lab: topology, live flows, explain on a click (127.0.0.1)", run: reported("ui", async (argv) => (await import("./lab-ui.ts")).cmdUi(argv)) },
    apiserver: { summary: "serve the lab's Kubernetes API on 127.0.0.1 (foreground; kubectl via `lab kubeconfig`)", run: reported("apiserver", async (argv) => (await import("./lab-apiserver.ts")).cmdApiserver(argv)) },
    "restart-apiserver": { summary: "restart the lab's API server (objects, port and tokens kept)", run: reported("restart-apiserver", async (argv) => (await import("./lab-apiserver.ts")).cmdRestartApiserver(argv)) },
    kubeconfig: { summary: "print the path of the admin kubeconfig of the lab's API server", run: reported("kubeconfig", async (argv) => (await import("./lab-apiserver.ts")).cmdKubeconfig(argv)) },
    down: { summary: "remove everything the lab created (idempotent)", run: reported("down", cmdDown) },
    _echo: { hidden: true, summary: "", run: cmdEcho },
    _probe: { hidden: true, summary: "", run: cmdProbe },
    _http: { hidden: true, summary: "", run: cmdHttp },
    _rr: { hidden: true, summary: "", run: cmdRr },
    _dns: { hidden: true, summary: "", run: cmdDns },
  },
  outro: `Every command but list takes --name (default: $MNCNI_LAB, else mnlab; now ${DEFAULT_LAB}). Pods are named
<node>/<pod> (e.g. node1/pod2) or by namespace (${DEFAULT_LAB}-node1-pod2). See docs/lab.md.`,
};

export async function labCommand(argv: string[]): Promise<number> {
  return dispatch(LAB, argv);
}
