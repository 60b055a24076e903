// The agent's logs: one JSON object per line for collectors, or readable lines for a person
// at a terminal (the default when stderr is a TTY). Same fields either way.
import { appendFileSync } from "node:fs";
import { escapeControls } from "./text.ts";

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;
export type LogFormat = "text" | "json";

export interface Logger {
  debug(msg: string, f?: Fields): void;
  info(msg: string, f?: Fields): void;
  warn(msg: string, f?: Fields): void;
  error(msg: string, f?: Fields): void;
}

const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

type Render = (time: Date, level: Level, msg: string, fields: Fields) => string;

const renderJson: Render = (time, level, msg, f) => JSON.stringify({ time: time.toISOString(), level, msg, ...f }) + "\n";

/** A value as logfmt writes it: bare when it is one plain word, quoted otherwise. */
const textValue = (v: unknown): string => {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  // JSON quoting escapes C0 controls, not C1 or bidi ones; a bare word escapes nothing.
  return escapeControls(/^[^\s"=]+$/.test(s) ? s : JSON.stringify(s));
};

/**
 * `2026-11-30T17:20:16.123Z WARN  msg key=value ...`; undefined fields are left out, as in JSON.
 * Messages quote pod names and errors: their control characters are escaped (base/text.ts),
 * one line per entry (values are JSON-quoted, which escapes them already).
 */
const renderText: Render = (time, level, msg, f) => {
  const kv = Object.entries(f).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}=${textValue(v)}`).join("");
  return `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${escapeControls(msg)}${kv}\n`;
};

function logger(write: (line: string) => void, render: Render, min: Level, base: Fields): Logger {
  const emit = (level: Level) => (msg: string, f: Fields = {}) => {
    if (RANK[level] < RANK[min]) return;
    write(render(new Date(), level, msg, { ...base, ...f }));
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

export function jsonLogger(write: (line: string) => void, min: Level = "info", base: Fields = {}): Logger {
  return logger(write, renderJson, min, base);
}

export function textLogger(write: (line: string) => void, min: Level = "info", base: Fields = {}): Logger {
  return logger(write, renderText, min, base);
}

/** text for a person at a terminal; json for a file, a pipe or a collector. */
export function defaultLogFormat(path: string | undefined, stderrIsTTY = process.stderr.isTTY === true): LogFormat {
  return path === undefined && stderrIsTTY ? "text" : "json";
}

/**
 * Lines appended synchronously (to the file, or stderr), so nothing is lost when the process
 * is killed. `format` undefined: defaultLogFormat.
 */
export function fileLogger(path: string | undefined, min: Level, base: Fields = {}, format: LogFormat = defaultLogFormat(path)): Logger {
  const write = path ? (l: string) => appendFileSync(path, l) : (l: string) => void process.stderr.write(l);
  return logger(write, format === "text" ? renderText : renderJson, min, base);
}
