// The wire format between the plugin process and a resident mncni (the agent or `mncni
// serve`) that executes CNI calls for it: one connection per call over a unix stream
// socket, the request as one line of JSON, the reply as text up to the server's close (see
// ServeReply). The plugin keeps its side open until the answer, so the server can tell when
// it went away. The native forwarder (src/forward/forward.c) speaks it too and repeats
// SERVE_PROTOCOL, FORWARDED_VARS and the FLAGS it uses: test/serve/forwarder-source.test.ts
// checks those against this file.
import { MAX_SOCKET_PATH } from "../sys/unix-socket.ts";

/** Bumped on any incompatible change; a server answers a mismatch with `fallback`. */
export const SERVE_PROTOCOL = 2;

/** The environment a plugin process hands over: CNI_* as the runtime set them, and the log file. */
export const FORWARDED_VARS = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "MNCNI_LOG_FILE"] as const;

/** Environment variables of the hand-off between a plugin process and a server. */
export const FLAGS = {
  /** Set by the forwarder when it runs mncni-core: do the call here, never try the server. */
  noAgent: "MNCNI_NO_AGENT",
  /** Set by the forwarder: a server took the call and did not answer; answer code 11 with this. */
  agentFailed: "MNCNI_AGENT_FAILED",
  /** How long to wait for a server's answer, ms. */
  timeoutMs: "MNCNI_AGENT_TIMEOUT_MS",
} as const;

/** Where the agent listens unless told otherwise (`--cni-socket`). */
export const DEFAULT_CNI_SOCKET = "/run/mncni/cni.sock";

export interface ServeRequest {
  protocol: number;
  /** The plugin's build; a server of another build declines (see `fallback`). */
  build: string;
  /** readlink of the caller's /proc/thread-self/ns/net, e.g. "net:[4026531840]". */
  netns: string;
  /** CNI_* variables (and MNCNI_LOG_FILE) exactly as the runtime set them. */
  env: Record<string, string>;
  /** The network configuration from stdin, as text. */
  stdin: string;
  /** The plugin process's phases up to sending this request, ms (for the log; see base/phases.ts). */
  clientPhases?: Record<string, number>;
}

/**
 * Either the call's outcome (what the plugin prints and its exit code), or `fallback`:
 * the server did not run the call (other build, other network namespace, shutting down)
 * and the plugin runs it itself.
 */
export type ServeReply = { code: number; stdout: string } | { fallback: string };

/**
 * On the wire: "answer <exit code>\n" followed by what to print, or "fallback\n<reason>".
 * Text rather than JSON so the native forwarder prints the answer without parsing it.
 */
export function formatReply(r: ServeReply): string {
  return "fallback" in r ? `fallback\n${r.fallback}` : `answer ${r.code}\n${r.stdout}`;
}

/** undefined: not a reply (a server cut short, or something else on the socket). */
export function parseReply(text: string): ServeReply | undefined {
  const eol = text.indexOf("\n");
  if (eol < 0) return undefined;
  const head = text.slice(0, eol);
  if (head === "fallback") return { fallback: text.slice(eol + 1) };
  const m = /^answer (\d+)$/.exec(head);
  return m ? { code: Number(m[1]), stdout: text.slice(eol + 1) } : undefined;
}

/**
 * The config's top-level `agentSocket`, when it is an absolute path that fits a socket
 * address; undefined otherwise (no field, odd value, unreadable config).
 */
export function configAgentSocket(configText: string): string | undefined {
  try {
    const path = (JSON.parse(configText) as { agentSocket?: unknown } | null)?.agentSocket;
    return typeof path === "string" && path.startsWith("/") && Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
  } catch {
    return undefined;
  }
}
