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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MNCNI_BUILD
#error "build with -DMNCNI_BUILD=\"<build id>\" (make build)"
#endif

#define CORE_NAME "mncni-core"
#define ANSWER_TIMEOUT_MS 120000L

static char **args;
static const char *in;
static size_t in_len;

// A growable byte buffer; on allocation failure the program falls back to mncni-core.
struct buf {
  char *p;
  size_t len, cap;
};

static void run_core(const char *failure);

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
      setenv("MNCNI_NO_AGENT", "1", 1);
      if (failure) setenv("MNCNI_AGENT_FAILED", failure, 1);
      execv(self, args);
    }
  }
fail:;
  // Nothing else can answer: say so in the CNI error format.
  char msg[512];
  int len = snprintf(msg, sizeof msg, "{\"cniVersion\":\"1.1.0\",\"code\":999,\"msg\":\"mncni: cannot run %s next to this executable: %s\"}\n", CORE_NAME, strerror(errno));
  if (len > 0 && write(1, msg, (size_t)len) < 0) _exit(1);
  _exit(1);
}

// The value of the first "agentSocket" key, if it is a plain string (no escapes) that fits a
// socket address. Only a hint: the server declines calls whose config does not name it.
static int socket_hint(struct sockaddr_un *addr) {
  static const char key[] = "\"agentSocket\"";
  const char *end = in + in_len;
  const char *k = memmem(in, in_len, key, sizeof key - 1);
  if (!k) return 0;
  const char *p = k + sizeof key - 1;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (p >= end || *p++ != ':') return 0;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (p >= end || *p++ != '"') return 0;
  const char *q = p;
  while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
  if (q >= end || *q != '"' || q == p || *p != '/' || (size_t)(q - p) >= sizeof addr->sun_path) return 0;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, p, (size_t)(q - p));
  return 1;
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
  if (!plugin || !command || !*command || !strcmp(command, "VERSION") || getenv("MNCNI_NO_AGENT")) run_core(NULL);

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

  char netns[128];
  ssize_t nl = readlink("/proc/thread-self/ns/net", netns, sizeof netns - 1);
  if (nl <= 0) run_core(NULL);

  struct buf req = {0};
  puts_(&req, "{\"protocol\":1,\"reply\":\"raw\",\"build\":\"" MNCNI_BUILD "\",\"netns\":");
  put_json(&req, netns, (size_t)nl);
  puts_(&req, ",\"env\":{");
  static const char *vars[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "MNCNI_LOG_FILE"};
  int first = 1;
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (!v) continue;
    if (!first) put(&req, ",", 1);
    first = 0;
    put_json(&req, vars[i], strlen(vars[i]));
    put(&req, ":", 1);
    put_json(&req, v, strlen(v));
  }
  puts_(&req, "},\"stdin\":");
  put_json(&req, in, in_len);
  char phases[96];
  snprintf(phases, sizeof phases, ",\"clientPhases\":{\"native\":%.2f}}\n", now_ms() - started);
  puts_(&req, phases);

  const char *timeout_env = getenv("MNCNI_AGENT_TIMEOUT_MS");
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
