// The address `mncni ui` / `mncni lab ui` prints once it listens ("… open http://…"), read
// from its stdout: what the web page's tests and benchmark connect to.
import type { Subprocess } from "bun";

export async function printedAddress(p: Subprocess<"ignore", "pipe", "pipe">, timeoutMs = 30_000): Promise<string> {
  const reader = p.stdout.getReader();
  let out = "";
  for (const end = Date.now() + timeoutMs; !/open (http\S+)/.test(out) && Date.now() < end; ) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const url = /open (http\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`the UI server printed no address: ${out} ${await new Response(p.stderr).text()}`);
  return url;
}
