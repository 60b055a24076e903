// One API server per lab: its state, CA, tokens and kubeconfigs under the lab's directory, on
// a port kept there too, so a restarted server is the same server to every kubeconfig.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { labDir } from "../topology.ts";
import { kubeconfigText, Tokens } from "./credentials.ts";
import { ApiServer } from "./server.ts";
import type { Admission } from "./resources.ts";

export const apiserverDir = (lab: string): string => join(labDir(lab), "apiserver");

/** Where `mncni lab kubeconfig` points people (the admin token). */
export const adminKubeconfig = (lab: string): string => join(apiserverDir(lab), "admin.kubeconfig");

/** A component's kubeconfig in the lab's API server directory ("lab", "controller", "agent-node1"). */
export const componentKubeconfig = (lab: string, component: string): string => join(apiserverDir(lab), `${component}.kubeconfig`);

const portFile = (lab: string) => join(apiserverDir(lab), "port");

/** The namespaces every cluster starts with. */
const NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** A second address the server listens on: inside the lab, for its nodes. */
export interface LabListener {
  hostname: string;
  /** /run/netns/NAME */
  netns: string;
}

/**
 * Starts the lab's API server on 127.0.0.1 (its last port, else port, else any free one), and on
 * the lab's address when given; `admit` is its mutating admission (the lab's Service allocators).
 */
export function startLabApiServer(lab: string, port = 0, inLab?: LabListener, admit?: Admission): ApiServer {
  const dir = apiserverDir(lab);
  const last = existsSync(portFile(lab)) ? Number(readFileSync(portFile(lab), "utf8")) : 0;
  const srv = new ApiServer({ dir, hostname: "127.0.0.1", port: port || last, ...(inLab ? { also: [inLab] } : {}), ...(admit ? { admit } : {}) }).listen();
  writeFileSync(portFile(lab), String(srv.port));
  for (const name of NAMESPACES) {
    if (!srv.store.get("namespaces", name)) srv.put("namespaces", { metadata: { name, labels: { "kubernetes.io/metadata.name": name } }, status: { phase: "Active" } });
  }
  srv.writeKubeconfig("admin", adminKubeconfig(lab));
  return srv;
}

/** The port the lab's server listens on (both addresses); undefined before its first start. */
export function labApiPort(lab: string): number | undefined {
  return existsSync(portFile(lab)) ? Number(readFileSync(portFile(lab), "utf8")) : undefined;
}

/**
 * Writes a component's kubeconfig naming the server at `hostname` (127.0.0.1 for people and the
 * lab's commands, the lab address for its nodes), from another process than the server's: the
 * token goes into tokens.json, which the running server reads again on an unknown token.
 */
export function writeComponentKubeconfig(lab: string, component: string, hostname: string): string {
  const port = labApiPort(lab);
  if (port === undefined) throw new Error(`cannot write a kubeconfig for "${component}": the API server of lab "${lab}" never started`);
  const dir = apiserverDir(lab);
  const path = componentKubeconfig(lab, component);
  writeFileSync(path, kubeconfigText(`https://${hostname}:${port}`, join(dir, "ca.crt"), new Tokens(dir).tokenOf(component)), { mode: 0o600 });
  return path;
}
