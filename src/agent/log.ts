// Structured logs: one JSON object per line, to stderr or a file.
import { appendFileSync } from "node:fs";

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, f?: Fields): void;
  info(msg: string, f?: Fields): void;
  warn(msg: string, f?: Fields): void;
  error(msg: string, f?: Fields): void;
}

const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function jsonLogger(write: (line: string) => void, min: Level = "info", base: Fields = {}): Logger {
  const emit = (level: Level) => (msg: string, f: Fields = {}) => {
    if (RANK[level] < RANK[min]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...f }) + "\n");
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** Lines appended synchronously, so nothing is lost when the process is killed. */
export function fileLogger(path: string | undefined, min: Level, base: Fields = {}): Logger {
  return jsonLogger(path ? (l) => appendFileSync(path, l) : (l) => process.stderr.write(l), min, base);
}
