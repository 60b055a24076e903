// The runtime side of CNI: a small libcni. It does what containerd/CRI-O do through libcni —
// load the lexically first network config of a directory, run each plugin of the chain with
// the CNI_* environment and prevResult, cache the final result on disk, DEL in reverse order
// with the cached result. Used by the lab and by tests that need a real runtime in front of
// a plugin. `execPrefix` (e.g. ["ip","netns","exec",NODE]) runs the plugins inside a node.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Attachment, CniCommand, NetConf, Result } from "../cni/types.ts";

/** A network configuration list, the form every config file is normalised to. */
export interface NetConfList {
  cniVersion: string;
  name: string;
  plugins: NetConf[];
  disableCheck?: boolean;
  disableGC?: boolean;
  /** The file it was read from (absent for a cached config). */
  file?: string;
}

/** One attachment as the runtime sees it. */
export interface RuntimeAttachment {
  containerId: string;
  /** Path of the pod's network namespace, e.g. /run/netns/NAME. */
  netns: string;
  ifname: string;
  /** CNI_ARGS, e.g. {K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "web"}. */
  args?: Record<string, string>;
  /** Capability arguments (portMappings, bandwidth, ...) given to plugins that declare them. */
  capabilityArgs?: Record<string, unknown>;
}

/** Timing of one plugin execution. */
export interface CallRecord {
  command: CniCommand;
  plugin: string;
  containerId: string;
  ms: number;
  ok: boolean;
}

export interface ExecutorOptions {
  confDir: string;
  binDirs: string[];
  /** Where final ADD results are cached (libcni: /var/lib/cni/results). */
  cacheDir: string;
  execPrefix?: string[];
  timeoutMs?: number;
  /** Extra environment for the plugins (PATH is inherited from this process). */
  env?: Record<string, string>;
  onCall?: (rec: CallRecord) => void;
}

/** A plugin's CNI error result, typed. */
export class CniPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly code: number,
    readonly msg: string,
    readonly details = "",
    readonly stderr = "",
  ) {
    super(`cannot run ${command} of plugin "${plugin}": [${code}] ${msg}${details ? ` (${details})` : ""}`);
    this.name = "CniPluginError";
  }
}

const CONF_EXTS = [".conflist", ".conf", ".json"];

/** Reads one config file into a list (a single-plugin .conf becomes a one-element list). */
function parseNetConfFile(file: string): NetConfList {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  if (Array.isArray(raw.plugins)) {
    const list = raw as unknown as NetConfList;
    if (typeof list.name !== "string" || typeof list.cniVersion !== "string") {
      throw new Error(`cannot load network config "${file}": name and cniVersion are required`);
    }
    return { ...list, file };
  }
  if (typeof raw.type !== "string") throw new Error(`cannot load network config "${file}": no "plugins" and no "type"`);
  const conf = raw as unknown as NetConf;
  return { cniVersion: conf.cniVersion, name: conf.name, plugins: [conf], file };
}

/** The lexically first config file of a directory (what kubelet/containerd pick), or null. */
export function firstConfFile(confDir: string): string | null {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch {
    return null;
  }
  const file = names.filter((n) => CONF_EXTS.some((e) => n.endsWith(e))).sort()[0];
  return file ? join(confDir, file) : null;
}

interface CacheEntry {
  kind: "cniCacheV1";
  containerId: string;
  ifName: string;
  networkName: string;
  cniArgs: Record<string, string>;
  capabilityArgs: Record<string, unknown>;
  config: NetConfList;
  result: Result;
}

function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

export class CniExecutor {
  readonly calls: CallRecord[] = [];

  constructor(readonly opts: ExecutorOptions) {}

  /** The network the next ADD would use. Throws when the directory has no config yet. */
  loadNetwork(): NetConfList {
    const file = firstConfFile(this.opts.confDir);
    if (!file) throw new Error(`cannot load network config "${this.opts.confDir}": no config file`);
    return parseNetConfFile(file);
  }

  async add(att: RuntimeAttachment): Promise<Result> {
    const list = this.loadNetwork();
    let prev: Result | undefined;
    for (const plugin of list.plugins) {
      prev = (await this.exec("ADD", list, plugin, att, prev)) as Result;
    }
    const result = prev ?? { cniVersion: list.cniVersion };
    this.writeCache({
      kind: "cniCacheV1",
      containerId: att.containerId,
      ifName: att.ifname,
      networkName: list.name,
      cniArgs: att.args ?? {},
      capabilityArgs: att.capabilityArgs ?? {},
      config: list,
      result,
    });
    return result;
  }

  /**
   * DEL in reverse order with the cached result. The config used at ADD time is cached too and
   * preferred, so a pod can be removed after the node's config changed or disappeared.
   */
  async del(att: RuntimeAttachment): Promise<void> {
    const cached = this.readCache(att);
    const list = cached?.config ?? this.loadNetwork();
    for (const plugin of [...list.plugins].reverse()) {
      await this.exec("DEL", list, plugin, att, cached?.result);
    }
    if (cached) rmSync(this.cachePath(list.name, att), { force: true });
  }

  async check(att: RuntimeAttachment): Promise<void> {
    const list = this.loadNetwork();
    if (list.disableCheck || !versionAtLeast(list.cniVersion, "0.4.0")) return;
    const cached = this.readCache(att, list.name);
    if (!cached) throw new Error(`cannot check attachment "${att.containerId}/${att.ifname}": no cached result`);
    for (const plugin of list.plugins) await this.exec("CHECK", list, plugin, att, cached.result);
  }

  async status(): Promise<void> {
    const list = this.loadNetwork();
    if (!versionAtLeast(list.cniVersion, "1.1.0")) return;
    for (const plugin of list.plugins) await this.exec("STATUS", list, plugin, undefined, undefined);
  }

  /** GC with the given valid attachments; stale cache entries of this network are removed. */
  async gc(valid: Attachment[]): Promise<void> {
    const list = this.loadNetwork();
    if (list.disableGC || !versionAtLeast(list.cniVersion, "1.1.0")) return;
    const errors: Error[] = [];
    for (const plugin of list.plugins) {
      await this.exec("GC", list, plugin, undefined, undefined, valid).catch((e: Error) => errors.push(e));
    }
    const keep = new Set(valid.map((a) => this.cacheName(list.name, a.containerID, a.ifname)));
    for (const f of this.cacheFiles()) if (f.startsWith(`${list.name}-`) && !keep.has(f)) rmSync(join(this.opts.cacheDir, f), { force: true });
    if (errors.length) throw errors[0];
  }

  /** Cached results of this executor's cache directory (what the runtime believes is attached). */
  cachedAttachments(): { networkName: string; containerId: string; ifName: string; result: Result }[] {
    return this.cacheFiles().flatMap((f) => {
      try {
        const e = JSON.parse(readFileSync(join(this.opts.cacheDir, f), "utf8")) as CacheEntry;
        return [{ networkName: e.networkName, containerId: e.containerId, ifName: e.ifName, result: e.result }];
      } catch {
        return [];
      }
    });
  }

  private async exec(
    command: CniCommand,
    list: NetConfList,
    plugin: NetConf,
    att: RuntimeAttachment | undefined,
    prevResult: Result | undefined,
    validAttachments?: Attachment[],
  ): Promise<Result | undefined> {
    const bin = this.findPlugin(plugin.type, command);
    const stdin: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    delete stdin.runtimeConfig;
    const runtimeConfig = this.runtimeConfig(plugin, att);
    if (runtimeConfig) stdin.runtimeConfig = runtimeConfig;
    if (prevResult) stdin.prevResult = prevResult;
    if (validAttachments) stdin["cni.dev/valid-attachments"] = validAttachments;

    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...this.opts.env,
      CNI_COMMAND: command,
      CNI_PATH: this.opts.binDirs.join(":"),
    };
    if (att) {
      env.CNI_CONTAINERID = att.containerId;
      env.CNI_NETNS = att.netns;
      env.CNI_IFNAME = att.ifname;
      env.CNI_ARGS = Object.entries(att.args ?? {}).map(([k, v]) => `${k}=${v}`).join(";");
    }
    const started = performance.now();
    const proc = Bun.spawn([...(this.opts.execPrefix ?? []), bin], {
      env,
      stdin: Buffer.from(JSON.stringify(stdin)),
      stdout: "pipe",
      stderr: "pipe",
      timeout: this.opts.timeoutMs ?? 30_000,
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const rec: CallRecord = { command, plugin: plugin.type, containerId: att?.containerId ?? "", ms: performance.now() - started, ok: code === 0 };
    this.calls.push(rec);
    this.opts.onCall?.(rec);
    if (code !== 0) throw pluginError(plugin.type, command, code, out, err);
    if (command !== "ADD") return undefined;
    try {
      return JSON.parse(out) as Result;
    } catch {
      throw new CniPluginError(plugin.type, command, 999, "cannot decode plugin result", out.slice(0, 500), err);
    }
  }

  /** runtimeConfig as libcni builds it: only the capabilities the plugin declares. */
  private runtimeConfig(plugin: NetConf, att: RuntimeAttachment | undefined): Record<string, unknown> | undefined {
    const caps = plugin.capabilities ?? {};
    const args = att?.capabilityArgs ?? {};
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(caps)) if (on && cap in args) rc[cap] = args[cap];
    return Object.keys(rc).length ? rc : undefined;
  }

  private findPlugin(type: string, command: CniCommand): string {
    if (type.includes("/")) throw new Error(`cannot find plugin "${type}": type must be a plain name`);
    for (const dir of this.opts.binDirs) {
      const p = join(dir, type);
      if (existsSync(p)) return p;
    }
    throw new CniPluginError(type, command, 999, `cannot find plugin "${type}" in ${this.opts.binDirs.join(":")}`);
  }

  private cacheName(network: string, containerId: string, ifname: string): string {
    return `${network}-${containerId}-${ifname}`;
  }

  private cachePath(network: string, att: RuntimeAttachment): string {
    return join(this.opts.cacheDir, this.cacheName(network, att.containerId, att.ifname));
  }

  private cacheFiles(): string[] {
    try {
      return readdirSync(this.opts.cacheDir).filter((f) => !f.endsWith(".tmp"));
    } catch {
      return [];
    }
  }

  private writeCache(e: CacheEntry): void {
    mkdirSync(this.opts.cacheDir, { recursive: true });
    const path = this.cachePath(e.networkName, { containerId: e.containerId, ifname: e.ifName, netns: "" });
    writeFileSync(`${path}.tmp`, JSON.stringify(e));
    renameSync(`${path}.tmp`, path);
  }

  /** The cached entry of an attachment; without a network name, the one of any network. */
  private readCache(att: RuntimeAttachment, network?: string): CacheEntry | null {
    const suffix = `-${att.containerId}-${att.ifname}`;
    const names = network ? [this.cacheName(network, att.containerId, att.ifname)] : this.cacheFiles().filter((f) => f.endsWith(suffix));
    for (const n of names) {
      try {
        return JSON.parse(readFileSync(join(this.opts.cacheDir, n), "utf8")) as CacheEntry;
      } catch {
        /* not cached under this name */
      }
    }
    return null;
  }
}

function pluginError(plugin: string, command: CniCommand, exit: number | null, out: string, err: string): CniPluginError {
  try {
    const e = JSON.parse(out) as { code?: number; msg?: string; details?: string };
    if (typeof e.code === "number") return new CniPluginError(plugin, command, e.code, e.msg ?? "", e.details ?? "", err);
  } catch {
    /* not a CNI error result */
  }
  return new CniPluginError(plugin, command, 999, `exit status ${exit}: ${(err || out).trim().slice(0, 500)}`, "", err);
}
