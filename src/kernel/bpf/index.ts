// Entry of src/kernel/bpf: bpf(2), the eBPF assembler and the fast path's programs and maps.
// Kept out of src/kernel/index.ts so that a plugin process pays for evaluating these modules
// only when its config turns the fast path on (src/plugin/features/fast-path.ts imports the
// fast path's objects lazily); the agent, obs/, tests and benches import this file directly.
export { Asm, R, type Reg } from "./asm.ts";
export { BpfError, PROG_TYPE, MAP_TYPE, possibleCpus, progLoad, progInfo, progTestRun, fdById, mapId, closeBpfFd, tcxAttach, tcxDetach, tcxProgIds, type ProgInfo, type TestRun } from "./syscall.ts";
export { PlainPodsMap, loadPodRedirect, podRedirectProgram, type PlainPod, type FastPathMaps } from "./pod-redirect.ts";
export { VERDICTS, VerdictCounters, type Verdict, type VerdictCount } from "./verdicts.ts";
export { HostGwRoutesMap, type HostGwRoute } from "./host-gw-routes.ts";
export { loadUnderlayIngress, underlayIngressProgram } from "./underlay-ingress.ts";
