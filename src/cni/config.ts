// Decodes and validates the generic part of the plugin config from stdin. Plugin-specific
// fields are left to the plugin (src/plugin/netconf.ts), which knows which ones it accepts.
import { CniError, ErrorCode, invalidConfig } from "./errors.ts";
import { containerIdProblem, ifnameProblem, networkNameProblem } from "./names.ts";
import type { Attachment, CniCommand, NetConf } from "./types.ts";
import { compareVersions, fromWire, isSupported, unsupportedVersion } from "./version.ts";

function decodeJson(bytes: Uint8Array, what = "network config"): unknown {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  if (text.trim() === "") throw new CniError(ErrorCode.DecodingFailure, `cannot decode ${what}: empty input on stdin`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CniError(ErrorCode.DecodingFailure, `cannot decode ${what}: ${(e as Error).message}`, "", { cause: e });
  }
}

/** The minimum spec version that defines each verb (the reference skel refuses older configs). */
const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" };

function parseAttachments(v: unknown): Attachment[] {
  if (!Array.isArray(v)) throw invalidConfig("cni.dev/valid-attachments", "must be an array");
  return v.map((a, i) => {
    const f = `cni.dev/valid-attachments[${i}]`;
    if (typeof a !== "object" || a === null) throw invalidConfig(f, "must be an object");
    const { containerID, ifname } = a as Record<string, unknown>;
    if (typeof containerID !== "string" || containerIdProblem(containerID)) throw invalidConfig(`${f}.containerID`, "not a valid container ID");
    if (typeof ifname !== "string" || ifnameProblem(ifname)) throw invalidConfig(`${f}.ifname`, "not a valid interface name");
    return { containerID, ifname };
  });
}

export function parseNetConf(bytes: Uint8Array, command: CniCommand): NetConf {
  const raw = decodeJson(bytes);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CniError(ErrorCode.DecodingFailure, "cannot decode network config: not a JSON object");
  }
  const conf = raw as Record<string, unknown>;
  if (!isSupported(conf.cniVersion)) {
    if (conf.cniVersion === undefined) throw invalidConfig("cniVersion", "missing");
    throw unsupportedVersion(conf.cniVersion);
  }
  const min = MIN_VERSION[command];
  if (min && compareVersions(conf.cniVersion, min) < 0) {
    throw new CniError(ErrorCode.IncompatibleVersion, `config version "${conf.cniVersion}" does not allow ${command} (needs ${min} or later)`);
  }
  if (typeof conf.name !== "string") throw invalidConfig("name", "missing or not a string");
  const nameWhy = networkNameProblem(conf.name);
  if (nameWhy) throw invalidConfig("name", `"${conf.name}" ${nameWhy}`);
  if (typeof conf.type !== "string" || conf.type === "") throw invalidConfig("type", "missing or not a string");
  // DEL and GC clean up by names derived from the attachment: a runtimeConfig they could not
  // read would only stop them, so one that is not an object is dropped, not refused.
  const cleanup = command === "DEL" || command === "GC";
  let dropRuntimeConfig = false;
  for (const key of ["runtimeConfig", "args", "capabilities", "ipam", "dns"] as const) {
    const v = conf[key];
    if (v !== undefined && (typeof v !== "object" || v === null || Array.isArray(v))) {
      if (key === "runtimeConfig" && cleanup) dropRuntimeConfig = true;
      else throw invalidConfig(key, "must be an object");
    }
  }
  if (conf.ipam !== undefined && typeof (conf.ipam as Record<string, unknown>).type !== "string") {
    throw invalidConfig("ipam.type", "missing or not a string");
  }
  const out: NetConf = { ...(conf as NetConf) };
  if (dropRuntimeConfig) delete out.runtimeConfig;
  if (conf.prevResult !== undefined && conf.prevResult !== null) out.prevResult = fromWire(conf.prevResult, "prevResult", conf.cniVersion);
  else delete out.prevResult;
  const va = conf["cni.dev/valid-attachments"];
  if (va !== undefined) out["cni.dev/valid-attachments"] = parseAttachments(va);
  return Object.freeze(out);
}
