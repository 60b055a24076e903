// The wire format between the plugin process and a resident mncni (the agent or `mncni
// serve`) that executes CNI calls for it: one connection per call over a unix stream
// socket, the request as one line of JSON, the response as JSON up to the server's close.
// The plugin keeps its side open until the answer, so the server can tell when it went away.

/** Bumped on any incompatible change; a server answers a mismatch with `fallback`. */
export const SERVE_PROTOCOL = 1;

/** Where the agent listens unless told otherwise (`--cni-socket`). */
export const DEFAULT_CNI_SOCKET = "/run/mncni/cni.sock";

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;

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
  /** The plugin process's phases up to sending this request, ms (for the log; see phases.ts). */
  clientPhases?: Record<string, number>;
  /**
   * "raw" (the native forwarder, src/forward/forward.c): the answer is "answer <exit code>\n"
   * followed by what to print, or "fallback\n<reason>"; otherwise a ServeResponse as JSON.
   */
  reply?: "raw";
}

/**
 * Either the call's outcome (what the plugin prints and its exit code), or `fallback`:
 * the server did not run the call (other build, other network namespace, shutting down)
 * and the plugin runs it itself.
 */
export type ServeResponse = { code: number; stdout: string } | { fallback: string };

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
