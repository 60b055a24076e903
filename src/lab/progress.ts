// Progress of a lab operation on stderr (one rewritten line on a terminal, plain lines
// otherwise), and its result: one line on stdout, the same stream for every command.
// Messages name pods, nodes and files: their control characters are escaped (src/base/text.ts).
import { escapeControls } from "../base/text.ts";

export interface Progress {
  step(msg: string): void;
  /** Ends the progress and prints the command's result (stdout, also with --quiet). */
  done(msg: string): void;
}

export function progress(opts: { quiet?: boolean; stream?: NodeJS.WriteStream; result?: (line: string) => void } = {}): Progress {
  const out = opts.stream ?? process.stderr;
  const print = opts.result ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const result = (line: string) => print(escapeControls(line, { lines: true }));
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
  if (opts.quiet) return { step() {}, done: result };
  if (!out.isTTY) {
    return {
      step: (msg) => out.write(`[${elapsed()}] ${escapeControls(msg)}\n`),
      done: (msg) => result(`${msg} (${elapsed()})`),
    };
  }
  // A terminal that reports no size (columns 0 or unset, e.g. a serial console) gets the
  // whole line rather than one cut to a guess.
  const width = () => (out.columns && out.columns > 0 ? Math.max(20, out.columns - 1) : Infinity);
  return {
    step: (msg) => out.write(`\r\x1b[K${`[${elapsed()}] ${escapeControls(msg)}`.slice(0, width())}`),
    done: (msg) => {
      out.write("\r\x1b[K");
      result(`${msg} (${elapsed()})`);
    },
  };
}

/** "1 node", "3 nodes". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
