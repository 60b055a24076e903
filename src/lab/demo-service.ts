// `lab up --demo-service`: default/echo, a NodePort Service in front of every pod's echo
// server (port 80 to 7777), so a new lab shows a Service in `lab status`, `lab check` and DNS.
import type { Obj } from "./apiserver/kinds.ts";
import { syncEndpointSlices } from "./endpoint-slices.ts";
import { applyObjects } from "./k8s-objects.ts";
import { parseServicePorts, serviceObject } from "./services.ts";
import type { LabState } from "./state.ts";

export async function addDemoService(s: LabState): Promise<void> {
  const svc = serviceObject({ namespace: "default", name: "echo", selector: { app: "echo" }, ports: parseServicePorts("http=80:7777/TCP"), type: "NodePort" });
  const r = await applyObjects(s, [svc as Obj]);
  if (r.failed.length) throw new Error(`cannot create the demo Service: ${r.failed.join("; ")}`);
  await syncEndpointSlices(s);
}
