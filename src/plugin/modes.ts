// The mode table: every mode of the plugin, by the name a config gives in `mode`. The Mode
// type derives from it, so adding a mode is one line here and one module.
import { bridgeMode } from "./bridge.ts";
import type { ModePolicy } from "./mode.ts";
import { routedMode } from "./routed.ts";

export const MODES = { bridge: bridgeMode, routed: routedMode } as const satisfies Record<string, ModePolicy>;

export type Mode = keyof typeof MODES;

export const MODE_NAMES = Object.keys(MODES) as Mode[];

export const isMode = (name: string): name is Mode => Object.hasOwn(MODES, name);
