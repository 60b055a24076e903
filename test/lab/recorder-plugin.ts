// A CNI plugin for executor tests: records its environment and stdin, then answers like a
// chained plugin (prevResult carried forward, plus one interface named after itself), or
// fails with a CNI error when the config says so.
import { appendFileSync } from "node:fs";

const stdin = await new Response(Bun.stdin.stream()).text();
const conf = JSON.parse(stdin);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("CNI_")));
appendFileSync(process.env.RECORD_FILE!, JSON.stringify({ plugin: conf.type, env, conf }) + "\n");
if (conf.failWith && process.env.CNI_COMMAND === conf.failOn) {
  console.log(JSON.stringify({ cniVersion: conf.cniVersion, code: conf.failWith, msg: "recorder told to fail", details: "on purpose" }));
  process.exit(1);
}
if (process.env.CNI_COMMAND === "ADD") {
  const prev = conf.prevResult ?? { cniVersion: conf.cniVersion, interfaces: [], ips: [] };
  prev.interfaces = [...(prev.interfaces ?? []), { name: conf.type, sandbox: process.env.CNI_NETNS }];
  console.log(JSON.stringify(prev));
}
