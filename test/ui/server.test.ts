// The page's server over a source of its own (what it reads is the source's business): the
// page and its bundle, the loopback Host check, the token off loopback, the event stream
// carrying a new verdict as a flow row, and explain's request checked field by field.
import { afterEach, expect, test } from "bun:test";
import { startUiServer, type UiServer } from "../../src/ui/server.ts";
import type { UiExplainRequest, UiFlowRow, UiSnapshot } from "../../src/ui/model.ts";
import type { UiFlowRecord, UiSource } from "../../src/ui/source.ts";

class ListSource implements UiSource {
  push?: (r: UiFlowRecord[]) => void;
  asked: UiExplainRequest[] = [];
  async state(): Promise<UiSnapshot> {
    return { topology: { title: "t", kind: "lab", nodes: [], pods: [], services: [], outside: [] }, policies: [], problems: [] };
  }
  followFlows(on: (r: UiFlowRecord[]) => void) {
    this.push = on;
    return () => {};
  }
  async explain(req: UiExplainRequest) {
    this.asked.push(req);
    return { src: req.src, dst: req.dst, proto: req.proto, port: req.port, hops: [], outcome: "delivered" as const };
  }
}

const record = (time: string): UiFlowRecord => ({ time, verdict: "deny", protocol: "TCP", node: "n1", src: { ip: "10.0.0.1", port: 5 }, dst: { ip: "10.0.0.2", port: 80 } });
let server: UiServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

test("serves the page and its script; a Host other than its own loopback address is refused", async () => {
  server = await startUiServer({ source: new ListSource(), hostname: "127.0.0.1", port: 0 });
  const html = await (await fetch(server.url)).text();
  expect(html).toContain('<div id="app">');
  const script = /src="([^"]+\.js)"/.exec(html)?.[1];
  expect(script).toBeDefined();
  const js = await fetch(new URL(script!, server.url));
  expect(js.status).toBe(200);
  expect((await js.text()).length).toBeGreaterThan(10_000);
  expect((await fetch(`${server.url}api/state`)).status).toBe(200);
  expect((await fetch(`${server.url}api/state`, { headers: { host: "rebound.example" } })).status).toBe(403);
});

test("with a token, /api/ needs it", async () => {
  server = await startUiServer({ source: new ListSource(), hostname: "127.0.0.1", port: 0, token: "s3cret" });
  expect(server.url).toContain("?token=s3cret");
  const base = new URL(server.url).origin;
  expect((await fetch(`${base}/api/state`)).status).toBe(401);
  expect((await fetch(`${base}/api/flows`)).status).toBe(401);
  expect((await fetch(`${base}/api/state?token=wrong`)).status).toBe(401);
  expect((await fetch(`${base}/api/state?token=s3cret`)).status).toBe(200);
  expect((await fetch(`${base}/api/state`, { headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
});

test("a new verdict goes out on the event stream as its flow row, counted", async () => {
  const src = new ListSource();
  server = await startUiServer({ source: src, hostname: "127.0.0.1", port: 0 });
  const res = await fetch(`${server.url}api/events`);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  const reader = res.body!.getReader();
  await reader.read(); // retry: line
  src.push!([record("2026-01-01T00:00:00.000Z"), { ...record("2026-01-01T00:00:01.000Z"), src: { ip: "10.0.0.1", port: 6 } }]);
  let text = "";
  while (!text.includes("\n\n") || !text.includes('"flows"')) text += new TextDecoder().decode((await reader.read()).value);
  const event = JSON.parse(text.slice(text.indexOf("data: ") + 6, text.indexOf("\n\n", text.indexOf("data: "))));
  expect(event.type).toBe("flows");
  expect(event.rows).toHaveLength(1);
  expect(event.rows[0].count).toBe(2);
  await reader.cancel();
  const rows = (await (await fetch(`${server.url}api/flows`)).json()) as UiFlowRow[];
  expect(rows.map((r) => r.count)).toEqual([2]);
});

test("explain: a bad request names its field; a good one reaches the source", async () => {
  const src = new ListSource();
  server = await startUiServer({ source: src, hostname: "127.0.0.1", port: 0 });
  const post = (body: unknown) => fetch(`${server!.url}api/explain`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const bad = await post({ src: "node1/pod1", dst: "10.0.0.2", proto: "sctp", port: 80 });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: string }).error).toStartWith("proto:");
  expect(((await (await post({ src: "a", dst: "b", proto: "tcp", port: 70000 })).json()) as { error: string }).error).toStartWith("port:");
  const ok = await post({ src: "node1/pod1", dst: "10.0.0.2", proto: "tcp", port: 80, probe: true });
  expect(ok.status).toBe(200);
  expect(src.asked).toEqual([{ src: "node1/pod1", dst: "10.0.0.2", proto: "tcp", port: 80, probe: true }]);
  expect((await fetch(`${server.url}api/explain`)).status).not.toBe(200);
});
