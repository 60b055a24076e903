// `mncni lab ui` driven in headless Chromium (Debian's chromium through playwright-core)
// against a real lab: the compiled executable serves the page from another directory; the
// topology shows every node and pod the lab reports, and its Service with the pods behind it; a policy applied with `lab apply`
// denies real TCP connections and the denied flows appear in the table (pushed over the event
// stream, no reload) with their policy and rule; a click explains one, ending in the drop at
// the right node; the filters narrow the table. Screenshots of each view go to a temporary
// directory (MNCNI_UI_SHOTS copies them there too: scripts/ui-screenshots.sh).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import type { LabStatus } from "../../src/lab/status.ts";
import { hasChromium, openBrowser, type OpenBrowser } from "../helpers/browser.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "../lab/lab-cli.ts";
import { printedAddress } from "../helpers/ui-server.ts";

setDefaultTimeout(180_000);

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: only-web-to-node2
  namespace: default
spec:
  podSelector:
    matchLabels:
      node: node2
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          role: web
`;

describe.skipIf(WIRING === "static" || !hasChromium())(`lab ui in Chromium${NEEDS_AGENT}${hasChromium() ? "" : " — skipped: no /usr/bin/chromium"}`, () => {
  const name = newLabName();
  const work = mkdtempSync(join(tmpdir(), `${name}-ui-`));
  // Kept after the run (its path is printed), so the views can be looked at.
  const shots = mkdtempSync(join(tmpdir(), "mncni-ui-shots-"));
  let server: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let browser: OpenBrowser | undefined;
  let page: Page;
  let pods: LabStatus["pods"] = [];
  const pod = (id: string) => pods.find((p) => `${p.node}/${p.name}` === id)!;

  const shot = async (view: string) => {
    await page.screenshot({ path: join(shots, `${view}.png`) });
    if (process.env.MNCNI_UI_SHOTS) {
      mkdirSync(process.env.MNCNI_UI_SHOTS, { recursive: true });
      copyFileSync(join(shots, `${view}.png`), join(process.env.MNCNI_UI_SHOTS, `ui-${view}.png`));
    }
  };
  /** A TCP connection from one pod to another's echo server (7777): whether it connected. */
  const connects = (from: string, to: string) => {
    const r = run(["ip", "netns", "exec", pod(from).namespace, ...LAB_CMD, "lab", "_probe", "--json", "--timeout", "1000", `${pod(to).ips[0]!.split("/")[0]}:7777`], { allowFail: true });
    return (JSON.parse(r.stdout) as { ok: boolean }[])[0]!.ok;
  };
  const rows = () => page.locator('[data-testid="flows"] tbody tr');

  /** Starts `mncni lab ui` (this lab, these flags); the address it printed. */
  const startServer = async (flags: string[]): Promise<string> => {
    server = Bun.spawn([...LAB_CMD, "lab", "ui", "--name", name, ...flags], { cwd: work, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    return printedAddress(server);
  };

  beforeAll(async () => {
    lab(name, ["up", "-q", "--nodes", "3", "--pods-per-node", "2"]);
    lab(name, ["pod", "add", "node1", "--namespace", "shop", "--labels", "tier=front"]);
    lab(name, ["service", "add", "default/echo2", "--selector", "node=node2", "--port", "80:7777/TCP"]);
    pods = labJson<LabStatus>(name, ["status"]).pods;
    // From another directory: the page is inside the executable, not beside it.
    const url = await startServer(["--port", "0"]);
    browser = await openBrowser();
    page = await browser.browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(url);
    await page.waitForSelector("#cy canvas");
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      server.kill("SIGTERM");
      await server.exited;
    }
    downAll();
    rmSync(work, { recursive: true, force: true });
    console.log(`lab ui screenshots: ${shots}`);
  });

  test("the executable serves the page and refuses another Host (no DNS rebinding)", async () => {
    const url = new URL(page.url());
    const r = await fetch(`${url.origin}/api/state`, { headers: { host: `evil.example:${url.port}` } });
    expect(r.status).toBe(403);
    expect((await fetch(`${url.origin}/api/state`)).status).toBe(200);
  });

  test("the topology shows every node and pod of the lab", async () => {
    const st = labJson<LabStatus>(name, ["status"]);
    const drawn = await page.evaluate(() => {
      const cy = (globalThis as unknown as { __cy: { nodes: (s: string) => { map: (f: (n: { id: () => string }) => string) => string[] } } }).__cy;
      return { nodes: cy.nodes('[kind = "node"]').map((n) => n.id()), pods: cy.nodes('[kind = "pod"]').map((n) => n.id()) };
    });
    expect(drawn.nodes.sort()).toEqual(st.nodes.map((n) => `node:${n.name}`).sort());
    expect(drawn.pods.sort()).toEqual(st.pods.map((p) => `pod:${p.node}/${p.name}`).sort());
    expect(st.pods.length).toBe(7);
    // The Service, with dashed edges to the pods its EndpointSlices name.
    await page.waitForFunction(() => (globalThis as unknown as { __cy: { getElementById: (id: string) => { nonempty: () => boolean } } }).__cy.getElementById("svc:default/echo2").nonempty(), undefined, { timeout: 30_000 });
    const backends = await page.evaluate(() => (globalThis as unknown as { __cy: { edges: (s: string) => { map: (f: (e: { data: (k: string) => string }) => string) => string[] } } }).__cy.edges('[verdict = "backend"]').map((e) => `${e.data("source")}>${e.data("target")}`));
    expect(backends.sort()).toEqual(st.pods.filter((p) => p.node === "node2").map((p) => `svc:default/echo2>pod:${p.node}/${p.name}`).sort());
    await shot("topology");
  });

  test("a policy applied with lab apply: the denied flows appear in the table with the policy and rule", async () => {
    await page.click('[data-testid="tab-flows"]');
    writeFileSync(join(work, "policy.yaml"), POLICY);
    lab(name, ["apply", "-f", join(work, "policy.yaml")]);
    // The agents apply it within a pass; until then a connection still gets through.
    let denied = false;
    for (let i = 0; i < 40 && !denied; i++) {
      denied = !connects("node1/pod1", "node2/pod1");
      if (!denied) await Bun.sleep(500);
    }
    expect(denied).toBe(true);
    expect(connects("node1/pod3", "node2/pod2")).toBe(false); // the shop pod
    const row = rows().and(page.locator('[data-verdict="deny"][data-policy="default/only-web-to-node2"]'));
    await row.first().waitFor({ timeout: 60_000 });
    await row.nth(1).waitFor({ timeout: 60_000 });
    const texts = await row.allInnerTexts();
    expect(texts.some((t) => t.includes("default/node1-pod1") && t.includes("default/node2-pod1") && t.includes("TCP/7777") && t.includes("ingress"))).toBe(true);
    expect(await row.first().getAttribute("data-rule")).toBe("default-deny");
    await shot("flows");
  });

  test("a click on the denied flow explains it: the path ends in the drop by that policy on node2", async () => {
    await rows().filter({ hasText: "default/node1-pod1" }).first().click();
    const panel = page.locator('[data-testid="explain"]');
    await panel.locator("[data-outcome]").waitFor({ timeout: 60_000 });
    expect(await panel.locator("[data-outcome]").innerText()).toBe("dropped");
    const hops = panel.locator(".hops").first().locator("li");
    const last = hops.last();
    expect(await last.locator(".place").innerText()).toBe("node2");
    expect(await last.getAttribute("class")).toContain("drop");
    expect(await last.innerText()).toContain("only-web-to-node2");
    expect(await hops.first().locator(".place").innerText()).toBe("node1/pod1");
    expect(await panel.locator('[data-testid="decider"]').innerText()).toContain("NetworkPolicy default/only-web-to-node2");
    // Why: the evaluator's account, per rule: its only peer wants role=web, which the source lacks.
    const why = await panel.locator('[data-testid="why-ingress"]').innerText();
    expect(why).toContain("DENIED");
    expect(why).toMatch(/ingress\[0\].*does not match/);
    expect(why).toContain("podSelector role=web does not select the source default/node1-pod1: it has no role");
    await shot("explain");
    // The traced probe: a real packet, traced by nftables, dropped where the path says.
    await panel.locator('[data-testid="probe"]').click();
    await panel.locator("h3", { hasText: "Traced probe" }).waitFor({ timeout: 60_000 });
    expect(await panel.innerText()).toContain("node2: dropped");
  });

  test("the filters narrow the table", async () => {
    const count = () => rows().count();
    const all = await count();
    expect(all).toBeGreaterThanOrEqual(2);
    await page.selectOption('[data-testid="f-namespace"]', "shop");
    expect(await count()).toBe(1);
    expect(await rows().first().innerText()).toContain("shop/");
    await page.selectOption('[data-testid="f-namespace"]', "");
    await page.fill('[data-testid="f-pod"]', "default/node1-pod1");
    expect(await count()).toBe(1);
    await page.fill('[data-testid="f-pod"]', "");
    await page.selectOption('[data-testid="f-verdict"]', "accept");
    expect(await count()).toBe(0);
    await page.selectOption('[data-testid="f-verdict"]', "deny");
    expect(await count()).toBe(all);
    await page.selectOption('[data-testid="f-policy"]', "none");
    expect(await count()).toBe(0);
    await page.selectOption('[data-testid="f-policy"]', "NetworkPolicy|default/only-web-to-node2");
    expect(await count()).toBe(all);
    await page.selectOption('[data-testid="f-time"]', "1");
    expect(await count()).toBe(all);
    await page.selectOption('[data-testid="f-namespace"]', "shop");
    await shot("filters");
    for (const f of ["f-namespace", "f-verdict", "f-policy", "f-time"]) await page.selectOption(`[data-testid="${f}"]`, f === "f-time" ? "0" : "");
  });

  test("policies: the policy lists the pods it selects and its recent verdicts", async () => {
    await page.click('[data-testid="tab-policies"]');
    await page.click('[data-testid="policies"] tbody tr[data-policy="NetworkPolicy|default/only-web-to-node2"]');
    const selects = await page.locator('[data-testid="policy-selects"] .tag').allInnerTexts();
    expect(selects.sort()).toEqual(pods.filter((p) => p.node === "node2").map((p) => `${p.k8sNamespace}/${p.k8sName}`).sort());
    expect(await page.locator('[data-testid="panel"]').innerText()).toContain("deny");
    await shot("policies");
    // Its pods picked out on the topology.
    await page.click('[data-testid="policy-show"]');
    await page.waitForSelector("#cy canvas");
    const picked = await page.evaluate(() => (globalThis as unknown as { __cy: { nodes: (s: string) => { map: (f: (n: { id: () => string }) => string) => string[] } } }).__cy.nodes(":selected").map((n) => n.id()));
    expect(picked.sort()).toEqual(pods.filter((p) => p.node === "node2").map((p) => `pod:${p.node}/${p.name}`).sort());
    await page.click('[data-testid="tab-policies"]');
  });

  test("the topology draws the denied flows as red edges", async () => {
    await page.click('[data-testid="panel"] .close');
    await page.click('[data-testid="tab-topology"]');
    await page.waitForSelector("#cy canvas");
    const edges = await page.evaluate(() => {
      const cy = (globalThis as unknown as { __cy: { edges: (s: string) => { map: (f: (e: { data: (k: string) => string }) => string) => string[] } } }).__cy;
      return cy.edges('[verdict = "deny"]').map((e) => `${e.data("source")}>${e.data("target")}`);
    });
    expect(edges).toContain("pod:node1/pod1>pod:node2/pod1");
    await page.locator("#cy").click({ position: { x: 5, y: 5 } });
    await shot("topology-flows");
  });

  test("a click on a pod shows its labels and policies, and explains a packet to another pod", async () => {
    const at = await page.evaluate(() => (globalThis as unknown as { __cy: { getElementById: (id: string) => { renderedPosition: () => { x: number; y: number } } } }).__cy.getElementById("pod:node1/pod1").renderedPosition());
    await page.locator("#cy").click({ position: at });
    const panel = page.locator('[data-testid="panel"]');
    await panel.locator("h2", { hasText: "default/node1-pod1" }).waitFor({ timeout: 10_000 });
    expect(await panel.innerText()).toContain("node=node1");
    await page.selectOption('[data-testid="explain-dst"]', "node3/pod1");
    await page.click('[data-testid="explain-go"]');
    const outcome = page.locator('[data-testid="explain"] [data-outcome]');
    await outcome.waitFor({ timeout: 60_000 });
    // No policy selects node3's pods: delivered, the path ending in node3/pod1.
    expect(await outcome.innerText()).toBe("delivered");
    expect(await page.locator('[data-testid="explain"] .hops').first().locator("li .place").last().innerText()).toBe("node3/pod1");
  });

  test("a node whose agent stopped turns not ready on the page (pushed, no reload), with the reason", async () => {
    await page.click('[data-testid="panel"] .close');
    await page.click('[data-testid="tab-topology"]');
    const node3 = labJson<LabStatus>(name, ["status"]).nodes.find((n) => n.name === "node3")!;
    process.kill(node3.agentPid!, "SIGTERM"); // the agent this test's lab started
    await page.waitForFunction(() => (globalThis as unknown as { __cy: { getElementById: (id: string) => { data: (k: string) => string } } }).__cy.getElementById("node:node3").data("health") === "not-ready", undefined, { timeout: 60_000, polling: 250 });
    const at = await page.evaluate(() => {
      const n = (globalThis as unknown as { __cy: { getElementById: (id: string) => { renderedBoundingBox: (o: object) => { x1: number; y1: number; x2: number; y2: number } } } }).__cy.getElementById("node:node3").renderedBoundingBox({ includeLabels: false });
      return { x: n.x1 + 6, y: n.y2 - 6 };
    });
    await page.locator("#cy").click({ position: at });
    const panel = page.locator('[data-testid="panel"]');
    await panel.locator("h2", { hasText: "node node3" }).waitFor({ timeout: 10_000 });
    expect(await panel.innerText()).toContain(`agent (pid ${node3.agentPid}) is not running`);
    await shot("not-ready");
  });

  test("the server restarted: the page reconnects by itself and reads the flows again (one denied meanwhile)", async () => {
    const port = new URL(page.url()).port;
    server!.kill("SIGTERM");
    await server!.exited;
    await page.locator('[data-testid="live"]', { hasText: "reconnecting" }).waitFor({ timeout: 30_000 });
    // Denied while no server runs: only a page that reads the flows again can show it.
    expect(connects("node1/pod2", "node2/pod1")).toBe(false);
    await Bun.sleep(1000); // the agent's log write
    await startServer(["--port", port]);
    await page.locator('[data-testid="live"]', { hasText: "live" }).waitFor({ timeout: 30_000 });
    await page.click('[data-testid="tab-flows"]');
    await rows().filter({ hasText: "default/node1-pod2" }).first().waitFor({ timeout: 30_000 });
    expect(await rows().and(page.locator('[data-policy="default/only-web-to-node2"]')).count()).toBe(3);
  });
});
