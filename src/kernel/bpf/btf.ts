// The kernel's BTF (/sys/kernel/btf/vmlinux), read only for what the programs need: the type
// IDs of kernel functions (kfuncs) a program calls. A kfunc has no fixed number as a helper
// has: the call names it by its BTF ID, which differs per kernel build.
// Not node:fs: the plugin loads this module on every ADD (sys/files.ts says why).
import { readBytes } from "../../sys/files.ts";

const BTF_MAGIC = 0xeb9f;
const KIND_FUNC = 12;
/** Bytes each kind carries after the 12-byte common header (per vlen where noted). */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 3: case 14: case 17: return kind === 3 ? 12 : 4; // INT, ARRAY, VAR, DECL_TAG
    case 4: case 5: case 15: case 19: return 12 * vlen; // STRUCT, UNION, DATASEC, ENUM64
    case 6: case 13: return 8 * vlen; // ENUM, FUNC_PROTO
    default: return 0; // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
  }
}

let funcs: Map<string, number> | undefined;

/** Every FUNC of the kernel's BTF by name (read once per process). */
function kernelFuncs(path = "/sys/kernel/btf/vmlinux"): Map<string, number> {
  if (funcs) return funcs;
  const b = readBytes(path);
  if (b.readUInt16LE(0) !== BTF_MAGIC) throw new Error(`${path}: not BTF (or not little-endian)`);
  const hdrLen = b.readUInt32LE(4);
  const [typeOff, typeLen, strOff] = [b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt32LE(16)];
  const types = hdrLen + typeOff;
  const strings = hdrLen + strOff;
  const out = new Map<string, number>();
  for (let at = types, id = 1; at < types + typeLen; id++) {
    const info = b.readUInt32LE(at + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind === KIND_FUNC) {
      const nameAt = strings + b.readUInt32LE(at);
      out.set(b.toString("latin1", nameAt, b.indexOf(0, nameAt)), id);
    }
    at += 12 + extraBytes(kind, info & 0xffff);
  }
  return (funcs = out);
}

/** The BTF ID of a kernel function, or an error naming it (a kernel without it: the feature is off). */
export function kfuncId(name: string): number {
  const id = kernelFuncs().get(name);
  if (id === undefined) throw new Error(`kernel function ${name} not in this kernel's BTF`);
  return id;
}
