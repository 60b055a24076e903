// What a unix socket's address can hold: shared by the plugin config's agentSocket, the
// agent's --cni-socket and the hand-off protocol, which all refuse a path that does not fit.

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;
