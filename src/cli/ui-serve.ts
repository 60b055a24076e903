// What `mncni ui` and `mncni lab ui` share: the address flags (loopback unless asked; any
// other address only with a token, made up when none is given) and serving until a signal.
import { randomBytes } from "node:crypto";
import { UI_PORT } from "../base/ports.ts";
import { isLoopback, startUiServer } from "../ui/server.ts";
import type { UiSource } from "../ui/source.ts";
import { say } from "./output.ts";

export const UI_FLAGS = {
  port: { type: "int", value: "PORT", default: UI_PORT, min: 0, max: 65535, help: "the port to serve the page on (0: any free one)" },
  address: { type: "string", value: "ADDR", default: "127.0.0.1", help: "the address to listen on; any but loopback needs a token (--token, else one is made up and printed)" },
  token: { type: "string", value: "TOKEN", help: "a token every request must carry (?token=); required off loopback" },
} as const;

/** Serves the page until SIGINT or SIGTERM; prints the address to open (and the token). */
export async function serveUi(cmd: string, source: UiSource, f: { port: number; address: string; token?: string }): Promise<number> {
  const token = f.token ?? (isLoopback(f.address) ? undefined : randomBytes(18).toString("base64url"));
  const server = await startUiServer({ source, hostname: f.address, port: f.port, ...(token ? { token } : {}) });
  say(`${cmd}: open ${server.url}`);
  if (token && !isLoopback(f.address)) say(`${cmd}: listening on ${f.address}: every request needs the token in the address above`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.stop();
  return 0;
}
