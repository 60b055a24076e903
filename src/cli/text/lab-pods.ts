// The text of `mncni lab pods` (the data: src/lab/pod-list.ts).
import type { LabPod } from "../../lab/pod-list.ts";
import { table } from "./render.ts";

export function formatLabPods(pods: LabPod[]): string {
  if (pods.length === 0) return "no pods in this lab (add one with `mncni lab pod add <node>`)";
  return table(
    ["NAMESPACE", "NAME", "NODE", "LAB POD", "IPS", "LABELS"],
    pods.map((p) => [
      p.k8sNamespace,
      p.k8sName,
      p.node,
      p.ref,
      p.ips.join(",") || "-",
      // Sorted by key, as kubectl --show-labels prints them.
      Object.keys(p.labels).sort().map((k) => `${k}=${p.labels[k]}`).join(","),
    ]),
  );
}
