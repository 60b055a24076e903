// The pod runtimes a lab can use, by kind (pod-runtime.ts says what a runtime does).
import type { PodRuntime } from "./pod-runtime.ts";
import { containerdRuntime } from "./runtime-containerd.ts";
import { directRuntime } from "./runtime-direct.ts";
import type { LabState } from "./state.ts";

/** The lab's runtime: direct unless `lab up --runtime` chose another (absent in older states: direct). */
export function runtimeFor(s: LabState): PodRuntime {
  return s.options.runtime === "containerd" ? containerdRuntime : directRuntime;
}
