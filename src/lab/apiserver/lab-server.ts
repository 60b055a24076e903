// One API server per lab: its state, CA, tokens and kubeconfigs under the lab's directory, on
// a port kept there too, so a restarted server is the same server to every kubeconfig.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { labDir } from "../topology.ts";
import { ApiServer } from "./server.ts";

export const apiserverDir = (lab: string): string => join(labDir(lab), "apiserver");

/** Where `mncni lab kubeconfig` points people (the admin token). */
export const adminKubeconfig = (lab: string): string => join(apiserverDir(lab), "admin.kubeconfig");

/** The namespaces every cluster starts with. */
const NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** Starts the lab's API server on 127.0.0.1 (its last port, else port, else any free one). */
export function startLabApiServer(lab: string, port = 0): ApiServer {
  const dir = apiserverDir(lab);
  const portFile = join(dir, "port");
  const last = existsSync(portFile) ? Number(readFileSync(portFile, "utf8")) : 0;
  const srv = new ApiServer({ dir, hostname: "127.0.0.1", port: port || last }).listen();
  writeFileSync(portFile, String(srv.port));
  for (const name of NAMESPACES) {
    if (!srv.store.get("namespaces", name)) srv.put("namespaces", { metadata: { name, labels: { "kubernetes.io/metadata.name": name } }, status: { phase: "Active" } });
  }
  srv.writeKubeconfig("admin", adminKubeconfig(lab));
  return srv;
}
