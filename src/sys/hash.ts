// Hex digests for derived names. Bun's built-in hasher, not node:crypto: importing
// node:crypto costs ~3 ms of start-up, which is a third of a CNI ADD.
export function sha256Hex(text: string): string {
  return new Bun.CryptoHasher("sha256").update(text).digest("hex");
}
