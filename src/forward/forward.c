// mncni's plugin entry point when an agent runs: a native forwarder. A CNI runtime starts
// a new plugin process for every call, and a Bun executable takes ~4 ms just to start (Go:
// ~2 ms, this program: well under 1 ms). When the config names an agent socket, this
// program sends the call there (src/serve/protocol.ts: one JSON line) and prints the
// answer; in every other case, and whenever anything is unexpected, it runs mncni-core (the
// Bun executable, in the same directory) with the same arguments, environment and stdin,
// which does the call itself. It interprets nothing of the CNI protocol: the server, which
// parses the config properly, checks that the config really names its socket.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MNCNI_BUILD
#error "build with -DMNCNI_BUILD=\"<build id>\" (make build)"
#endif

#define CORE_NAME "mncni-core"
#define ANSWER_TIMEOUT_MS 120000L
// Repeated from src/serve/protocol.ts (SERVE_PROTOCOL, FORWARDED_VARS, FLAGS) and
// src/cni/types.ts (SUPPORTED_VERSIONS, CURRENT_VERSION); test/serve/forwarder-source.test.ts
// checks them against those.
#define SERVE_PROTOCOL "2"
static const char *const FORWARDED_VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "MNCNI_LOG_FILE"};
#define FLAG_NO_AGENT "MNCNI_NO_AGENT"
#define FLAG_AGENT_FAILED "MNCNI_AGENT_FAILED"
#define FLAG_TIMEOUT_MS "MNCNI_AGENT_TIMEOUT_MS"
static const char *const SUPPORTED_VERSIONS[] = {"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
#define CURRENT_VERSION "1.1.0"

static char **args;
static const char *in;
static size_t in_len;

// A growable byte buffer; on allocation failure the program falls back to mncni-core.
struct buf {
  char *p;
  size_t len, cap;
};

static void run_core(const char *failure);
static const char *answer_version(void);

static void put(struct buf *b, const void *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = (b->len + n) * 2;
    char *p = realloc(b->p, cap);
    if (!p) run_core(NULL);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

// A JSON string: quotes, backslashes and control characters escaped; other bytes as they are
// (the server decodes the request as UTF-8, as the TypeScript client's does).
static void put_json(struct buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(b, e, 6);
    } else {
      put(b, &s[i], 1);
    }
  }
  put(b, "\"", 1);
}

// Runs mncni-core from this executable's directory in place of this process. stdin was read
// already: it is handed over in a memfd. With failure set, the core answers code 11 with it
// instead of running the call (a server took the call and did not answer: running it again
// could do it twice). The core never tries the server again (MNCNI_NO_AGENT).
static void run_core(const char *failure) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - sizeof CORE_NAME - 1);
  if (n > 0) {
    self[n] = 0;
    // Replaced while running (an upgrade installs by rename): the link names the old file.
    static const char deleted[] = " (deleted)";
    if ((size_t)n > sizeof deleted - 1 && !strcmp(self + n - (sizeof deleted - 1), deleted)) self[n - (sizeof deleted - 1)] = 0;
    char *slash = strrchr(self, '/');
    if (slash) {
      strcpy(slash + 1, CORE_NAME);
      if (in) {
        int fd = memfd_create("mncni-stdin", 0);
        if (fd < 0) goto fail;
        for (size_t off = 0; off < in_len;) {
          ssize_t w = write(fd, in + off, in_len - off);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) goto fail;
          off += (size_t)w;
        }
        if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 0) < 0) goto fail;
        close(fd);
      }
      setenv(FLAG_NO_AGENT, "1", 1);
      if (failure) setenv(FLAG_AGENT_FAILED, failure, 1);
      execv(self, args);
    }
  }
fail:;
  // Nothing else can answer: say so in the CNI error format, in the config's version when
  // this plugin supports it (as src/cni/run.ts's errorAnswer does).
  const char *why = strerror(errno);
  char msg[512];
  int len = snprintf(msg, sizeof msg, "{\"cniVersion\":\"%s\",\"code\":999,\"msg\":\"mncni: cannot run %s next to this executable: %s\"}\n", answer_version(), CORE_NAME, why);
  if (len > 0 && write(1, msg, (size_t)len) < 0) _exit(1);
  _exit(1);
}

// The value of the first `key` (quoted) in the config, if it is a plain string (no escapes):
// a text search, not a parse. Only hints: the server declines calls whose config does not
// name its socket at top level, and mncni-core answers every other error itself.
static int string_value(const char *key, size_t key_len, const char **value, size_t *value_len) {
  if (!in) return 0;
  const char *end = in + in_len;
  const char *k = memmem(in, in_len, key, key_len);
  if (!k) return 0;
  const char *p = k + key_len;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (p >= end || *p++ != ':') return 0;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (p >= end || *p++ != '"') return 0;
  const char *q = p;
  while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
  if (q >= end || *q != '"') return 0;
  *value = p;
  *value_len = (size_t)(q - p);
  return 1;
}

// The config's "agentSocket", if it is an absolute path that fits a socket address.
static int socket_hint(struct sockaddr_un *addr) {
  static const char key[] = "\"agentSocket\"";
  const char *p;
  size_t n;
  if (!string_value(key, sizeof key - 1, &p, &n) || n == 0 || *p != '/' || n >= sizeof addr->sun_path) return 0;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, p, n);
  return 1;
}

// The version to answer an error in: the config's cniVersion when supported, else the current.
static const char *answer_version(void) {
  static const char key[] = "\"cniVersion\"";
  const char *p;
  size_t n;
  if (string_value(key, sizeof key - 1, &p, &n))
    for (size_t i = 0; i < sizeof SUPPORTED_VERSIONS / sizeof *SUPPORTED_VERSIONS; i++)
      if (strlen(SUPPORTED_VERSIONS[i]) == n && !memcmp(SUPPORTED_VERSIONS[i], p, n)) return SUPPORTED_VERSIONS[i];
  return CURRENT_VERSION;
}

// The listener gets the whole config and environment, and its answer is printed as the
// call's outcome: it must be root's (the agent) or this process's own user's.
static int trusted_peer(int fd, const char *path) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return 0;
  if (cred.uid == 0 || cred.uid == geteuid()) return 1;
  fprintf(stderr, "mncni: not handing the call to %s: it runs as uid %u (pid %d), neither root nor this plugin's uid %u; doing it here\n", path, (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
  return 0;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  (void)argc;
  args = argv;
  double started = now_ms();
  const char *command = getenv("CNI_COMMAND");
  const char *name = argv[0] ? strrchr(argv[0], '/') : NULL;
  name = name ? name + 1 : (argv[0] ? argv[0] : "");
  // Only the interface plugin's calls are handed over: not the CLI, not VERSION, not the IPAM
  // plugin (invoked as mncni-ipam), not a call the core was asked to run itself.
  int plugin = !strcmp(name, "mncni") || !strcmp(name, "mncni-forward");
  if (!plugin || !command || !*command || !strcmp(command, "VERSION") || getenv(FLAG_NO_AGENT)) run_core(NULL);

  // All of stdin: the config is small. (Should this fail half-way, the core gets the rest
  // and reports the config as unreadable, which it then is.)
  struct buf stdin_buf = {0};
  for (;;) {
    char chunk[65536];
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) run_core(NULL);
    if (r == 0) break;
    put(&stdin_buf, chunk, (size_t)r);
  }
  in = stdin_buf.p ? stdin_buf.p : "";
  in_len = stdin_buf.len;

  struct sockaddr_un addr;
  if (!socket_hint(&addr)) run_core(NULL);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) run_core(NULL);
  if (!trusted_peer(fd, addr.sun_path)) {
    close(fd);
    run_core(NULL);
  }

  char netns[128];
  ssize_t nl = readlink("/proc/thread-self/ns/net", netns, sizeof netns - 1);
  if (nl <= 0) run_core(NULL);

  struct buf req = {0};
  puts_(&req, "{\"protocol\":" SERVE_PROTOCOL ",\"build\":\"" MNCNI_BUILD "\",\"netns\":");
  put_json(&req, netns, (size_t)nl);
  puts_(&req, ",\"env\":{");
  int first = 1;
  for (size_t i = 0; i < sizeof FORWARDED_VARS / sizeof *FORWARDED_VARS; i++) {
    const char *v = getenv(FORWARDED_VARS[i]);
    if (!v) continue;
    if (!first) put(&req, ",", 1);
    first = 0;
    put_json(&req, FORWARDED_VARS[i], strlen(FORWARDED_VARS[i]));
    put(&req, ":", 1);
    put_json(&req, v, strlen(v));
  }
  puts_(&req, "},\"stdin\":");
  put_json(&req, in, in_len);
  char phases[96];
  snprintf(phases, sizeof phases, ",\"clientPhases\":{\"native\":%.2f}}\n", now_ms() - started);
  puts_(&req, phases);

  const char *timeout_env = getenv(FLAG_TIMEOUT_MS);
  long timeout_ms = timeout_env && atol(timeout_env) > 0 ? atol(timeout_env) : ANSWER_TIMEOUT_MS;
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  // From here the server may have the call: failures are answered, never run again.
  for (size_t off = 0; off < req.len;) {
    ssize_t w = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) run_core("the mncni agent closed the connection while taking the call; try again");
    off += (size_t)w;
  }
  free(req.p);
  struct buf res = {0};
  for (;;) {
    char chunk[65536];
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) run_core("no answer from the mncni agent in time; try again");
    if (r < 0) run_core("cannot read the mncni agent's answer; try again");
    if (r == 0) break;
    put(&res, chunk, (size_t)r);
  }
  close(fd);

  // "answer <exit code>\n<stdout>" or "fallback\n<reason>".
  if (res.len >= 9 && !memcmp(res.p, "fallback\n", 9)) run_core(NULL);
  if (res.len < 8 || memcmp(res.p, "answer ", 7)) run_core("the mncni agent closed the connection without an answer; try again");
  char *eol = memchr(res.p, '\n', res.len);
  if (!eol) run_core("the mncni agent's answer is cut short; try again");
  int code = atoi(res.p + 7);
  const char *out = eol + 1;
  size_t out_len = res.len - (size_t)(out - res.p);
  int status = code;
  for (size_t off = 0; off < out_len;) {
    ssize_t w = write(1, out + off, out_len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      status = 1;
      break;
    }
    off += (size_t)w;
  }
  free(res.p);
  free(stdin_buf.p);
  return status;
}
