// Progress of a lab operation: one rewritten line on a terminal, plain lines otherwise.
export interface Progress {
  step(msg: string): void;
  done(msg: string): void;
}

export function progress(opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const out = opts.stream ?? process.stderr;
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
  if (opts.quiet) return { step() {}, done() {} };
  if (!out.isTTY) {
    return {
      step: (msg) => out.write(`[${elapsed()}] ${msg}\n`),
      done: (msg) => out.write(`[${elapsed()}] ${msg}\n`),
    };
  }
  const width = () => Math.max(20, (out.columns ?? 80) - 1);
  return {
    step: (msg) => out.write(`\r\x1b[K[${elapsed()}] ${msg}`.slice(0, width() + 4)),
    done: (msg) => out.write(`\r\x1b[K[${elapsed()}] ${msg}\n`),
  };
}
