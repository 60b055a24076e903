// The default health/metrics ports of the agent and the controller (/healthz, /readyz,
// /metrics on the host's loopback; both run with hostNetwork). One place, so the flags'
// defaults, the manifests, `mncni status` and the lab agree.
//
// Chosen outside every common CNI's defaults, so mncni can run beside another CNI during a
// migration: Calico uses 9099 (Felix health), 9098 (Typha health), 9091/9093 (metrics);
// Cilium 4240 (cluster health), 9876 (agent API), 9879 (agent health), 9234 (operator
// health), 9890/9891 (gops), 9962-9965 (metrics, Envoy); Antrea 10349-10351; kindnet 19080;
// kube-router 20244; kube-proxy 10249/10256; Flannel's health port is off by default.
export const AGENT_HEALTH_PORT = 9817;
export const CONTROLLER_HEALTH_PORT = 9818;
/** `mncni ui` and `mncni lab ui`: the page's server, on 127.0.0.1 unless told otherwise. */
export const UI_PORT = 9819;
