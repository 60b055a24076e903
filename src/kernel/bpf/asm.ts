// A small eBPF assembler: the instructions mncni's tc programs use, with named labels for
// jumps, encoded as the kernel reads them (struct bpf_insn: u8 code, u4 dst, u4 src, s16 off,
// s32 imm; 8 bytes, little-endian). Only what the programs need; the verifier checks the rest.

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
/** r0 return value, r1-r5 arguments (clobbered by calls), r6-r9 kept across calls, r10 frame pointer. */
export const R = { r0: 0, r1: 1, r2: 2, r3: 3, r4: 4, r5: 5, r6: 6, r7: 7, r8: 8, r9: 9, fp: 10 } as const;

const CLS = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, ALU64: 0x07 } as const;
const SIZE = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 } as const;
const MEM = 0x60;
const IMM = 0x00;
const SRC_K = 0x00;
const SRC_X = 0x08;
const ALU_OP = { add: 0x00, sub: 0x10, mul: 0x20, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70, mov: 0xb0 } as const;
const JMP_OP = { ja: 0x00, eq: 0x10, gt: 0x20, ge: 0x30, set: 0x40, ne: 0x50, lt: 0xa0, le: 0xb0 } as const;
const CALL = 0x80;
const EXIT = 0x90;
/** ld_imm64's src register when imm is a map's fd (the loader swaps in the map). */
const PSEUDO_MAP_FD = 1;
/** A call's src register when imm is a kernel function's BTF ID (a kfunc of vmlinux: off 0). */
const PSEUDO_KFUNC_CALL = 2;

export type Size = keyof typeof SIZE;
export type AluOp = keyof typeof ALU_OP;
export type Cond = Exclude<keyof typeof JMP_OP, "ja">;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** a jump's target, resolved into off by assemble() */
  target?: string;
}

export class Asm {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();

  private push(i: Insn): this {
    this.insns.push(i);
    return this;
  }

  /** dst op= imm (64-bit). */
  alu(op: AluOp, dst: Reg, imm: number): this {
    return this.push({ code: CLS.ALU64 | ALU_OP[op] | SRC_K, dst, src: 0, off: 0, imm });
  }
  /** dst op= src (64-bit). */
  aluReg(op: AluOp, dst: Reg, src: Reg): this {
    return this.push({ code: CLS.ALU64 | ALU_OP[op] | SRC_X, dst, src, off: 0, imm: 0 });
  }
  mov(dst: Reg, imm: number): this { return this.alu("mov", dst, imm); }
  movReg(dst: Reg, src: Reg): this { return this.aluReg("mov", dst, src); }

  /** dst = *(size *)(src + off) */
  load(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.push({ code: CLS.LDX | MEM | SIZE[size], dst, src, off, imm: 0 });
  }
  /** *(size *)(dst + off) = src */
  store(size: Size, dst: Reg, off: number, src: Reg): this {
    return this.push({ code: CLS.STX | MEM | SIZE[size], dst, src, off, imm: 0 });
  }

  /** dst = a map (two instruction slots: ld_imm64 with the map's fd). */
  loadMap(dst: Reg, mapFd: number): this {
    this.push({ code: CLS.LD | IMM | SIZE.dw, dst, src: PSEUDO_MAP_FD, off: 0, imm: mapFd });
    return this.push({ code: 0, dst: 0, src: 0, off: 0, imm: 0 });
  }

  /** if (dst cond imm) goto label */
  jmp(cond: Cond, dst: Reg, imm: number, label: string): this {
    return this.push({ code: CLS.JMP | JMP_OP[cond] | SRC_K, dst, src: 0, off: 0, imm, target: label });
  }
  /** if (dst cond src) goto label */
  jmpReg(cond: Cond, dst: Reg, src: Reg, label: string): this {
    return this.push({ code: CLS.JMP | JMP_OP[cond] | SRC_X, dst, src, off: 0, imm: 0, target: label });
  }
  goto(label: string): this {
    return this.push({ code: CLS.JMP | JMP_OP.ja, dst: 0, src: 0, off: 0, imm: 0, target: label });
  }

  /** Calls a helper by its number; arguments in r1-r5, result in r0. */
  call(helper: number): this {
    return this.push({ code: CLS.JMP | CALL, dst: 0, src: 0, off: 0, imm: helper });
  }
  /** Calls a kernel function (kfunc) by its BTF ID in vmlinux; arguments and result as for call. */
  callKfunc(btfId: number): this {
    return this.push({ code: CLS.JMP | CALL, dst: 0, src: PSEUDO_KFUNC_CALL, off: 0, imm: btfId });
  }
  exit(): this {
    return this.push({ code: CLS.JMP | EXIT, dst: 0, src: 0, off: 0, imm: 0 });
  }

  /** Names the next instruction. */
  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`bpf asm: label ${name} defined twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  /** The program as the kernel reads it (insn count = length / 8). */
  assemble(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const dv = new DataView(out.buffer);
    this.insns.forEach((i, n) => {
      let off = i.off;
      if (i.target !== undefined) {
        const at = this.labels.get(i.target);
        if (at === undefined) throw new Error(`bpf asm: jump to undefined label ${i.target}`);
        off = at - (n + 1);
        if (off < -0x8000 || off > 0x7fff) throw new Error(`bpf asm: jump to ${i.target} too far`);
      }
      dv.setUint8(n * 8, i.code);
      dv.setUint8(n * 8 + 1, (i.src << 4) | i.dst);
      dv.setInt16(n * 8 + 2, off, true);
      dv.setInt32(n * 8 + 4, i.imm | 0, true);
    });
    return out;
  }
}
