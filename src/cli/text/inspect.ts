// The text of `mncni inspect`: how the pods of a node are wired, as a table of all attachments
// (with their problems) or every detail of one (the data: src/obs/attachments.ts).
import type { SelectingPolicy } from "../../obs/policy-view.ts";
import type { Attachment, NodeAttachments } from "../../obs/attachments.ts";
import type { PodMTUView } from "../../obs/pod-mtu.ts";
import { formatPodMTU } from "./status.ts";
import { bold, dim, fields, green, red, table } from "./render.ts";

/** One line per selecting policy, as inspect prints it. */
export const formatSelecting = (p: SelectingPolicy) =>
  `${p.direction} ${p.kind} ${p.name} (${p.tier}${p.priority !== undefined ? ` priority ${p.priority}` : ""})`;

const state = (a: Attachment) => (a.problems.length ? red(`${a.problems.length} problem${a.problems.length > 1 ? "s" : ""}`) : green("ok"));
/**
 * A runtime's 64-hex container ID cut to 12 as crictl does; any other ID (the lab's
 * <lab>-<node>-<pod>) in full, since a cut one is ambiguous.
 */
const shortId = (id: string) => (/^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id);
const podOf = (a: Attachment) => (a.podName ? `${a.podNamespace ?? "?"}/${a.podName}` : dim("(unknown pod)"));

export function formatAttachmentTable(n: NodeAttachments): string {
  const rows = n.attachments.map((a) => [
    podOf(a),
    shortId(a.containerId),
    a.ifname,
    a.hostVeth?.name ?? red("-"),
    (a.resultIps.length ? a.resultIps : a.reservations).join(","),
    a.history.ADD ? `${a.history.ADD.outcome} ${a.history.ADD.durationMs.toFixed(1)}ms` : "-",
    state(a),
  ]);
  const problems = [...n.problems, ...n.attachments.flatMap((a) => a.problems.map((p) => `${podOf(a)} (${shortId(a.containerId)}): ${p}`))];
  return [
    `${bold(n.node)}: ${n.attachments.length} attachment(s) on network "${n.network}"${n.podMTU ? `, pod MTU ${formatPodMTU(n.podMTU)}` : ""}`,
    n.attachments.length ? table(["POD", "CONTAINER", "IF", "HOST VETH", "IPS", "LAST ADD", "STATE"], rows) : "",
    ...(problems.length ? ["", red("problems:"), ...problems.map((p) => `  - ${p}`)] : []),
  ].filter((l) => l !== "").join("\n");
}

const linkLine = (l: Attachment["hostVeth"]) => (l ? `${l.name} (index ${l.index}, ${l.mac}, mtu ${l.mtu}${l.up ? "" : ", DOWN"})` : red("missing"));

/** One attachment in full; podMTU: the node's, with why (its pod interface shows its own MTU beside it). */
export function formatAttachment(a: Attachment, podMTU?: PodMTUView): string {
  const lines: string[] = [
    bold(`${podOf(a)}  container ${a.containerId}`),
    fields([
      ["netns", a.netns ?? "-"],
      ["interface", a.podInterface ? linkLine(a.podInterface) : `${a.ifname} ${red("missing")}`],
      ...(podMTU ? [["node's pod MTU", formatPodMTU(podMTU)] as [string, string]] : []),
      ["host veth", linkLine(a.hostVeth)],
      ["result IPs", a.resultIps.join(", ") || "-"],
      ["pod addresses", a.podAddresses.join(", ") || "-"],
      ["reserved", a.reservations.join(", ") || red("none")],
    ]),
    bold("routes in the pod"),
    ...(a.podRoutes.length ? a.podRoutes.map((r) => `  ${r.dst}${r.gw ? ` via ${r.gw}` : ""}${r.dev ? ` dev ${r.dev}` : ""}`) : ["  -"]),
    bold("host routes and neighbours serving it"),
    ...a.hostRoutes.map((r) => `  route ${r.dst}${r.gw ? ` via ${r.gw}` : ""} dev ${r.dev}`),
    ...a.hostNeighbours.map((n) => `  neighbour ${n.ip} lladdr ${n.mac ?? "-"} dev ${n.dev}`),
    ...(a.hostRoutes.length + a.hostNeighbours.length === 0 ? ["  - (bridge mode: the pod is reached on the bridge; no per-pod route)"] : []),
    bold("anti-spoofing"),
    ...(a.antiSpoofing.length ? a.antiSpoofing.map((e) => `  ${e}`) : ["  -"]),
    bold("policies selecting it"),
    ...(a.policies === undefined
      ? [`  ${dim("(unknown: no cluster state read; pass --source as the agent's)")}`]
      : a.policies.length
        ? a.policies.map((p) => `  ${formatSelecting(p)}`)
        : ["  - (selected by no policy: all traffic allowed)"]),
    ...(a.fastPath
      ? [bold("fast path"), a.fastPath.plain ? `  ${green("yes")}: plain (its TCP and UDP with the node's other plain pods skips the stack)` : `  no: takes the stack`, ...a.fastPath.why.map((w) => `  - ${w}`)]
      : []),
    bold("CNI history (last call per verb)"),
    ...(Object.keys(a.history).length
      ? Object.entries(a.history).map(([verb, c]) => `  ${verb.padEnd(6)} ${c.time}  ${c.durationMs.toFixed(1)} ms  ${c.outcome === "ok" ? green("ok") : red(`error: ${c.msg ?? ""}`)}`)
      : ["  -"]),
  ];
  if (a.problems.length) lines.push(red("problems"), ...a.problems.map((p) => `  - ${p}`));
  return lines.join("\n");
}
