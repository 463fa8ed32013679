/*
 * sseload — the load client of tailsse's benchmark harness (bench/run.py compiles it with gcc -O2).
 *
 * One C process with epoll instead of Python: 100 connections x 1,000 events/s is 100k events/s,
 * which a Python client cannot parse without becoming the bottleneck and the main source of latency.
 *
 * Modes (each prints one JSON object on stdout; diagnostics go to stderr):
 *
 *   sseload replay   --port P --path PATH --expect N [--read eager|coalesce] [--timeout S]
 *       [--count data|events|id-events]
 *       One SSE client (HTTP/1.1, Accept: text/event-stream, chunked body decoded) that reads until it
 *       has seen N events: N `data:` lines (`data`, the default), N blank-line-terminated events
 *       with a `data:` line (`events`), or N such events that also had an `id:` line (`id-events`).
 *   sseload pipe-tcp --expect N [--read eager|coalesce] [--timeout S] -- CMD ARGS...
 *       The physical-limit baseline: runs CMD with its stdout connected to a loopback TCP socket and
 *       counts the newline-terminated lines that arrive on the other end, until N.
 *   sseload live-sse  --port P --path PATH --clients C --file F --rate R --lines N [--timeout S]
 *   sseload live-exec --clients C --file F --rate R --lines N [--timeout S] -- CMD ARGS...
 *       C followers (SSE connections, or C copies of CMD whose stdout is a pipe) of file F, and a
 *       writer thread that appends N lines at R lines/s to F, each carrying its CLOCK_MONOTONIC send
 *       time. Every follower records receive time - send time for every line (the time is taken
 *       right after the read() that returned it) and whether it got every line exactly once.
 *       Before measuring, the writer appends `##sync` lines until every follower has shown one, so
 *       a follower that was slow to start is not counted as losing lines.
 *
 *   sseload live-ws   --port P --path PATH --clients C --file F --rate R --lines N [--timeout S]
 *       As live-sse, but every follower is a WebSocket client (RFC 6455 handshake, then the server's
 *       unmasked frames; every text/binary message is one line), e.g. of websocketd running
 *       `tail -n 0 -F F` once per connection.
 *
 *   Live options for scale: --src-addrs K binds the client sockets round-robin to 127.0.0.2 ..
 *   127.0.0.(K+1) (more than one source address's ephemeral ports); --sync-ms M writes a ##sync
 *   line every M ms until every follower saw one (default 20), --sync-timeout S gives up after S
 *   seconds (default 20); --idle-seconds S: once every follower is synced, print `#idle` on stdout
 *   and wait S seconds before the measured lines (the harness samples the server's memory with every
 *   client connected and idle); --slow K --slow-bps B adds K more connections that read only B
 *   bytes/s each (not in the latency figures: their events are checked for order and duplicates,
 *   and whether the server closed them). Followers whose connection fails or is refused (a peer's
 *   limit) are counted (`failed_clients`) and left out of the sync; the run is then not ok.
 *
 * Read modes: `eager` reads as soon as data is there (blocking recv into a 1 MiB buffer in a tight
 * loop: the reader wakes on every write it can, as a browser does); `coalesce` sleeps 10 ms after
 * every short read so the data piles up in the socket buffer and each read takes a lot of it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG_READ (1 << 20)
#define LIVE_READ (64 << 10)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "sseload: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void fail(const char *msg) {
    fprintf(stderr, "sseload: %s\n", msg);
    exit(2);
}

static double rusage_cpu(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------------------------------ */
/* Options                                                                                          */

enum { COUNT_DATA, COUNT_EVENTS, COUNT_ID_EVENTS };

struct options {
    const char *mode;
    int port;
    const char *path;
    long long expect;
    int coalesce;
    double timeout;
    int clients;
    const char *file;
    int count;         /* replay: COUNT_DATA, COUNT_EVENTS or COUNT_ID_EVENTS */
    double rate;
    long long lines;
    int src_addrs;     /* bind client sockets to 127.0.0.2 .. 127.0.0.(1+src_addrs); 0 = kernel's choice */
    int sync_ms;
    double sync_timeout;
    double idle_seconds;
    int slow;          /* extra connections that read slowly */
    int slow_bps;
    char **cmd; /* NULL-terminated, after "--" */
};

static void parse_options(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    o->path = "/";
    o->timeout = 120;
    o->clients = 1;
    o->rate = 1000;
    o->sync_ms = 20;
    o->sync_timeout = 20;
    o->slow_bps = 1024;
    if (argc < 2) fail("usage: sseload replay|pipe-tcp|live-sse|live-exec [options] [-- CMD ARGS...]");
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { o->cmd = &argv[i + 1]; break; }
        if (i + 1 >= argc) { fprintf(stderr, "sseload: %s needs a value\n", a); exit(2); }
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0) o->port = atoi(v);
        else if (strcmp(a, "--path") == 0) o->path = v;
        else if (strcmp(a, "--expect") == 0) o->expect = atoll(v);
        else if (strcmp(a, "--read") == 0) {
            if (strcmp(v, "eager") == 0) o->coalesce = 0;
            else if (strcmp(v, "coalesce") == 0) o->coalesce = 1;
            else fail("--read is eager or coalesce");
        }
        else if (strcmp(a, "--timeout") == 0) o->timeout = atof(v);
        else if (strcmp(a, "--clients") == 0) o->clients = atoi(v);
        else if (strcmp(a, "--file") == 0) o->file = v;
        else if (strcmp(a, "--count") == 0) {
            if (strcmp(v, "data") == 0) o->count = COUNT_DATA;
            else if (strcmp(v, "events") == 0) o->count = COUNT_EVENTS;
            else if (strcmp(v, "id-events") == 0) o->count = COUNT_ID_EVENTS;
            else fail("--count is data, events or id-events");
        }
        else if (strcmp(a, "--rate") == 0) o->rate = atof(v);
        else if (strcmp(a, "--lines") == 0) o->lines = atoll(v);
        else if (strcmp(a, "--src-addrs") == 0) o->src_addrs = atoi(v);
        else if (strcmp(a, "--sync-ms") == 0) o->sync_ms = atoi(v);
        else if (strcmp(a, "--sync-timeout") == 0) o->sync_timeout = atof(v);
        else if (strcmp(a, "--idle-seconds") == 0) o->idle_seconds = atof(v);
        else if (strcmp(a, "--slow") == 0) o->slow = atoi(v);
        else if (strcmp(a, "--slow-bps") == 0) o->slow_bps = atoi(v);
        else { fprintf(stderr, "sseload: unknown option %s\n", a); exit(2); }
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* A follower: an HTTP/SSE connection or a child's stdout, with its parsing state.                  */

enum { CS_SIZE, CS_EXT, CS_DATA, CS_DATA_CR, CS_DATA_LF, CS_DONE };

struct conn;
typedef void (*line_fn)(struct conn *c, const char *line, size_t len);

struct conn {
    int fd;
    int idx;
    pid_t pid;
    int http;          /* expects an HTTP response head */
    int ws;            /* WebSocket: 101 head, then frames */
    int wstate;        /* 0 header, 1 payload */
    unsigned char wh[14];
    size_t wh_len;
    uint64_t wremain;
    int wop, wfin;
    int slow;          /* reads slow_bps bytes/s; not in the latency matrix */
    int failed;        /* connection refused/failed, or a non-200 answer */
    int sse;           /* only `data:` lines carry payload */
    int count;         /* replay: what counts as an event (COUNT_*) */
    int ev_data, ev_id; /* the event being parsed has had a data: / id: line */
    int head_done;
    char head[8192];
    size_t head_len;
    int status;
    int chunked;
    int cstate;
    uint64_t cremain;
    char *carry;
    size_t carry_len, carry_cap;
    line_fn on_line;
    int64_t t_recv;    /* time of the read that returned the bytes being parsed */
    uint64_t lines, events, bytes;
    int ready;         /* saw a ##sync line */
    int eof;
    long long got;     /* distinct measured lines */
    long long dups, reordered, bad;
    long long last_seq;
};

static void line_scan(struct conn *c, const char *p, size_t n) {
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            if (c->carry_len + n > c->carry_cap) {
                c->carry_cap = (c->carry_len + n) * 2;
                c->carry = realloc(c->carry, c->carry_cap);
                if (!c->carry) fail("out of memory");
            }
            memcpy(c->carry + c->carry_len, p, n);
            c->carry_len += n;
            return;
        }
        size_t len = (size_t)(nl - p);
        if (c->carry_len) {
            if (c->carry_len + len > c->carry_cap) {
                c->carry_cap = (c->carry_len + len) * 2;
                c->carry = realloc(c->carry, c->carry_cap);
                if (!c->carry) fail("out of memory");
            }
            memcpy(c->carry + c->carry_len, p, len);
            c->on_line(c, c->carry, c->carry_len + len);
            c->carry_len = 0;
        } else {
            c->on_line(c, p, len);
        }
        p = nl + 1;
        n -= len + 1;
    }
}

/* WebSocket frames from the server (unmasked, RFC 6455): a text/binary message is one line. */
static void ws_feed(struct conn *c, const char *p, size_t n) {
    while (n > 0) {
        if (c->wstate == 0) {
            c->wh[c->wh_len++] = (unsigned char)*p++; n--;
            if (c->wh_len < 2) continue;
            size_t need = 2;
            unsigned len7 = c->wh[1] & 0x7f;
            if (len7 == 126) need += 2; else if (len7 == 127) need += 8;
            if (c->wh[1] & 0x80) need += 4; /* masked (servers must not) */
            if (c->wh_len < need) continue;
            uint64_t len = len7;
            if (len7 == 126) len = ((uint64_t)c->wh[2] << 8) | c->wh[3];
            else if (len7 == 127) { len = 0; for (int i = 2; i < 10; i++) len = (len << 8) | c->wh[i]; }
            if (c->wh[1] & 0x80) c->bad++;
            c->wop = c->wh[0] & 0x0f;
            c->wfin = (c->wh[0] & 0x80) != 0;
            c->wremain = len;
            c->wh_len = 0;
            if (c->wop == 8) { c->eof = 1; return; }   /* close */
            c->wstate = 1;
        }
        if (c->wstate == 1) {
            size_t take = n < c->wremain ? n : (size_t)c->wremain;
            if (take && (c->wop <= 2)) line_scan(c, p, take);   /* 0 continuation, 1 text, 2 binary */
            p += take; n -= take; c->wremain -= take;
            if (c->wremain == 0) {
                if (c->wfin && c->wop <= 2) line_scan(c, "\n", 1);
                c->wstate = 0;
            }
        }
    }
}

static void body_feed(struct conn *c, const char *p, size_t n) {
    if (c->ws) { ws_feed(c, p, n); return; }
    if (!c->chunked) { line_scan(c, p, n); return; }
    while (n > 0) {
        switch (c->cstate) {
        case CS_SIZE: {
            char ch = *p++; n--;
            if (ch >= '0' && ch <= '9') c->cremain = c->cremain * 16 + (uint64_t)(ch - '0');
            else if (ch >= 'a' && ch <= 'f') c->cremain = c->cremain * 16 + (uint64_t)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F') c->cremain = c->cremain * 16 + (uint64_t)(ch - 'A' + 10);
            else if (ch == ';') c->cstate = CS_EXT;
            else if (ch == '\n') c->cstate = c->cremain ? CS_DATA : CS_DONE;
            break;
        }
        case CS_EXT: {
            char ch = *p++; n--;
            if (ch == '\n') c->cstate = c->cremain ? CS_DATA : CS_DONE;
            break;
        }
        case CS_DATA: {
            size_t take = n < c->cremain ? n : (size_t)c->cremain;
            line_scan(c, p, take);
            p += take; n -= take; c->cremain -= take;
            if (c->cremain == 0) c->cstate = CS_DATA_CR;
            break;
        }
        case CS_DATA_CR: {
            char ch = *p++; n--;
            if (ch == '\r') c->cstate = CS_DATA_LF;
            else if (ch == '\n') { c->cstate = CS_SIZE; c->cremain = 0; }
            else { c->bad++; c->cstate = CS_SIZE; c->cremain = 0; }
            break;
        }
        case CS_DATA_LF: {
            char ch = *p++; n--;
            if (ch != '\n') c->bad++;
            c->cstate = CS_SIZE; c->cremain = 0;
            break;
        }
        case CS_DONE:
            c->eof = 1;
            return;
        }
    }
}

static int has_token_ci(const char *head, const char *name, const char *value) {
    /* Finds header `name` (case-insensitive) whose value contains `value` (case-insensitive). */
    const char *line = head;
    size_t nl = strlen(name);
    while ((line = strchr(line, '\n')) != NULL) {
        line++;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            char tmp[512];
            if (len >= sizeof tmp) len = sizeof tmp - 1;
            memcpy(tmp, line, len); tmp[len] = 0;
            if (strcasestr(tmp + nl + 1, value)) return 1;
        }
    }
    return 0;
}

static void feed(struct conn *c, const char *p, size_t n) {
    c->bytes += n;
    if (c->http && !c->head_done) {
        size_t take = n;
        if (c->head_len + take >= sizeof c->head) take = sizeof c->head - 1 - c->head_len;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += take;
        c->head[c->head_len] = 0;
        char *end = strstr(c->head, "\r\n\r\n");
        if (!end) {
            if (c->head_len >= sizeof c->head - 1) fail("response head too long");
            return;
        }
        size_t head_bytes = (size_t)(end + 4 - c->head);
        size_t used_from_this = head_bytes - (c->head_len - take);
        *end = 0;
        c->head_done = 1;
        if (sscanf(c->head, "HTTP/%*s %d", &c->status) != 1) c->status = -1;
        c->chunked = has_token_ci(c->head, "transfer-encoding", "chunked");
        p += used_from_this;
        n -= used_from_this;
        if (c->status != (c->ws ? 101 : 200)) {
            fprintf(stderr, "sseload: connection %d: HTTP status %d\n", c->idx, c->status);
            c->eof = 1;
            c->failed = 1;
            return;
        }
        if (c->ws) c->chunked = 0;
    }
    body_feed(c, p, n);
}

/* src: 0 = the kernel's choice, else bind to 127.0.0.(1+src) first. Returns -1 (errno set) when
 * the connection fails and `soft`, else dies. */
static int tcp_connect_from(int port, int src, int soft) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (src > 0) {
        struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = 0 };
        la.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)src);
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&la, sizeof la) < 0) die("bind source address");
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (!soft) die("connect");
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int tcp_connect(int port) { return tcp_connect_from(port, 0, 0); }

static void send_request(int fd, int port, const char *path) {
    char req[2048];
    int len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
                       "User-Agent: tailsse-bench/1\r\n\r\n", path, port);
    if (len <= 0 || len >= (int)sizeof req) fail("request too long");
    if (write(fd, req, (size_t)len) != len) die("send request");
}

static void send_ws_request(int fd, int port, const char *path) {
    char req[2048];
    int len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                       "Origin: http://127.0.0.1:%d\r\nUser-Agent: tailsse-bench/1\r\n\r\n", path, port, port);
    if (len <= 0 || len >= (int)sizeof req) fail("request too long");
    if (write(fd, req, (size_t)len) != len) die("send request");
}

static void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

static pid_t spawn_stdout_to(int out_fd, char **cmd, int close_from) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (dup2(out_fd, 1) < 0) _exit(127);
        for (int fd = 3; fd < close_from; fd++) close(fd);
        execvp(cmd[0], cmd);
        fprintf(stderr, "sseload: exec %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* ------------------------------------------------------------------------------------------------ */
/* replay and pipe-tcp: one stream, as fast as it comes                                              */

static void count_event(struct conn *c, const char *line, size_t len) {
    if (!c->sse) { c->events++; return; }
    if (c->count == COUNT_DATA) {
        if (len >= 5 && memcmp(line, "data:", 5) == 0) c->events++;
        return;
    }
    /* Whole events: a blank line ends one; it counts when it had a data: line (and, for
     * id-events, an id: line). A lone CR is the blank line of a CRLF stream. */
    if (len == 0 || (len == 1 && line[0] == '\r')) {
        if (c->ev_data && (c->count != COUNT_ID_EVENTS || c->ev_id)) c->events++;
        c->ev_data = c->ev_id = 0;
    } else if (len >= 5 && memcmp(line, "data:", 5) == 0) {
        c->ev_data = 1;
    } else if (len >= 3 && memcmp(line, "id:", 3) == 0) {
        c->ev_id = 1;
    }
}

static int run_bulk(const struct options *o, int fd, pid_t child, int64_t t0) {
    struct conn c = { .fd = fd, .on_line = count_event, .http = !child, .sse = !child, .pid = child, .count = o->count };
    char *buf = malloc(BIG_READ);
    if (!buf) fail("out of memory");
    int64_t t_first = 0, t_end = 0, deadline = t0 + (int64_t)(o->timeout * 1e9);
    long long reads = 0, sleeps = 0;
    struct timeval tv = { .tv_sec = 1 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *why = "ok";
    while (1) {
        ssize_t n = recv(fd, buf, BIG_READ, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (now_ns() > deadline) { why = "timeout"; break; }
                continue;
            }
            die("recv");
        }
        if (n == 0) { why = "eof before all events"; break; }
        reads++;
        if (!t_first) t_first = now_ns();
        feed(&c, buf, (size_t)n);
        if (c.events >= (uint64_t)o->expect) { t_end = now_ns(); break; }
        if (c.eof) { why = "stream ended"; break; }
        if (now_ns() > deadline) { why = "timeout"; break; }
        if (o->coalesce && n < BIG_READ) {
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            sleeps++;
        }
    }
    if (!t_end) t_end = now_ns();
    double child_cpu = 0;
    if (child > 0) {
        close(fd);
        kill(child, SIGTERM);
        int st;
        waitpid(child, &st, 0);
        child_cpu = rusage_cpu(RUSAGE_CHILDREN);
    }
    double secs = (t_end - t0) / 1e9;
    printf("{\"ok\":%s,\"why\":\"%s\",\"events\":%llu,\"expect\":%lld,\"seconds\":%.6f,\"rate\":%.1f,"
           "\"bytes\":%llu,\"ttfb_s\":%.6f,\"reads\":%lld,\"sleeps\":%lld,\"bad_chunks\":%lld,"
           "\"client_cpu_s\":%.4f,\"child_cpu_s\":%.4f,\"read_mode\":\"%s\"}\n",
           c.events >= (uint64_t)o->expect ? "true" : "false", why, (unsigned long long)c.events, o->expect,
           secs, secs > 0 ? c.events / secs : 0.0, (unsigned long long)c.bytes,
           t_first ? (t_first - t0) / 1e9 : -1.0, reads, sleeps, c.bad, rusage_cpu(RUSAGE_SELF), child_cpu,
           o->coalesce ? "coalesce" : "eager");
    return c.events >= (uint64_t)o->expect ? 0 : 1;
}

static int mode_replay(const struct options *o) {
    if (!o->port || o->expect <= 0) fail("replay needs --port and --expect");
    int64_t t0 = now_ns();
    int fd = tcp_connect(o->port);
    send_request(fd, o->port, o->path);
    int rc = run_bulk(o, fd, 0, t0);
    close(fd);
    return rc;
}

static int mode_pipe_tcp(const struct options *o) {
    if (!o->cmd || !o->cmd[0] || o->expect <= 0) fail("pipe-tcp needs --expect and -- CMD");
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0) die("listen");
    if (getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) die("getsockname");
    int64_t t0 = now_ns();
    int wfd = tcp_connect(ntohs(sa.sin_port));
    int rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (rfd < 0) die("accept");
    close(lfd);
    pid_t child = spawn_stdout_to(wfd, o->cmd, 3);
    close(wfd);
    return run_bulk(o, rfd, child, t0);
}

/* ------------------------------------------------------------------------------------------------ */
/* live: many followers, a paced writer, latency of every line at every follower                    */

static struct {
    const struct options *o;
    long long n;
    int clients;
    int64_t *lat;            /* clients x n, -1 = not received */
    int64_t *slip;           /* n: how late the writer was against its schedule */
    _Atomic int all_ready;
    _Atomic int writer_state; /* 0 running, 1 done, 2 failed */
    _Atomic int64_t writer_done_ns;
    int64_t writer_start_ns;
    long long syncs;
    int writer_rt;
} L;

static void live_line(struct conn *c, const char *line, size_t len) {
    if (c->sse) {
        if (len < 5 || memcmp(line, "data:", 5) != 0) return;
    }
    c->lines++;
    const char *m = memmem(line, len, "@@", 2);
    if (!m) {
        if (memmem(line, len, "##sync", 6)) c->ready = 1;
        return;
    }
    /* @@SEQ SENDNS@@ */
    char tmp[48];
    size_t avail = len - (size_t)(m - line) - 2;
    size_t take = avail < sizeof tmp - 1 ? avail : sizeof tmp - 1;
    memcpy(tmp, m + 2, take); tmp[take] = 0;
    char *endp;
    long long seq = strtoll(tmp, &endp, 10);
    long long sent = strtoll(endp, NULL, 10);
    if (seq < 0 || seq >= L.n || sent <= 0) { c->bad++; return; }
    if (c->slow) {
        /* A slow reader: no latency, but every line once and in order. */
        if (seq == c->last_seq) c->dups++;
        else if (seq < c->last_seq) c->reordered++;
        else c->got++;
        c->last_seq = seq;
        return;
    }
    int64_t *slot = &L.lat[(size_t)c->idx * (size_t)L.n + (size_t)seq];
    if (*slot >= 0) { c->dups++; return; }
    *slot = c->t_recv - sent;
    c->got++;
    if (seq < c->last_seq) c->reordered++;
    c->last_seq = seq;
}

static void *writer_main(void *arg) {
    (void)arg;
    const struct options *o = L.o;
    int fd = open(o->file, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) { perror("sseload: open --file"); atomic_store(&L.writer_state, 2); return NULL; }
    /* A real-time writer keeps the offered load at an even R lines/s even when the followers saturate
     * both cores (it uses microseconds per line). Without it, a starved writer falls behind and then
     * catches up in bursts, which is a different load for each subject. */
    struct sched_param sp = { .sched_priority = 10 };
    L.writer_rt = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    char line[256];
    int64_t sync_deadline = now_ns() + (int64_t)(o->sync_timeout * 1e9);
    while (!atomic_load(&L.all_ready)) {
        if (now_ns() > sync_deadline) {
            fprintf(stderr, "sseload: followers never all saw a sync line\n");
            atomic_store(&L.writer_state, 2);
            close(fd);
            return NULL;
        }
        int len = snprintf(line, sizeof line, "##sync %lld waiting for every follower to show this line\n", L.syncs++);
        if (write(fd, line, (size_t)len) != len) { perror("sseload: write"); }
        struct timespec ts = { o->sync_ms / 1000, (long)(o->sync_ms % 1000) * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    /* Let the last sync lines drain before the measured lines start. */
    int settle_ms = o->sync_ms * 10 > 200 ? o->sync_ms * 10 : 200;
    struct timespec settle = { settle_ms / 1000, (long)(settle_ms % 1000) * 1000 * 1000 };
    nanosleep(&settle, NULL);
    if (o->idle_seconds > 0) {
        /* Every follower connected and idle: the harness samples the server now. */
        printf("#idle %d\n", o->clients);
        fflush(stdout);
        int64_t until = now_ns() + (int64_t)(o->idle_seconds * 1e9);
        struct timespec ts = { (time_t)(until / 1000000000LL), (long)(until % 1000000000LL) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        printf("#live\n");
        fflush(stdout);
    }
    int64_t period = (int64_t)(1e9 / o->rate);
    int64_t start = now_ns() + 10 * 1000 * 1000;
    L.writer_start_ns = start;
    for (long long i = 0; i < L.n; i++) {
        int64_t target = start + i * period;
        struct timespec ts = { (time_t)(target / 1000000000LL), (long)(target % 1000000000LL) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        int64_t t = now_ns();
        L.slip[i] = t - target;
        /* ~100 bytes, like a log line: the marker, then filler text. */
        int len = snprintf(line, sizeof line,
                           "@@%09lld %019lld@@ host app[4242]: GET /api/v1/items?page=%lld status=200 dur=%lldus\n",
                           i, (long long)t, i % 977, (i * 37) % 99991);
        if (write(fd, line, (size_t)len) != len) perror("sseload: write");
    }
    atomic_store(&L.writer_done_ns, now_ns());
    atomic_store(&L.writer_state, 1);
    close(fd);
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t pct(const int64_t *v, size_t n, double q) {
    if (n == 0) return -1;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

enum { LIVE_SSE, LIVE_EXEC, LIVE_WS };

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

#define MAX_PENDING 128

/* Opens follower c: a connection that sent its request (live-sse, live-ws) or a child whose stdout is
 * a pipe (live-exec). Eager followers go into epoll (and count in *open_conns); slow ones are read on a
 * timer. A connection that fails counts in *failed and, for an eager follower, in *ended. */
static void open_follower(struct conn *c, const struct options *o, int kind, int ep, int *failed, int *open_conns,
                          int *ended) {
    if (kind != LIVE_EXEC) {
        c->http = 1;
        c->sse = kind == LIVE_SSE;
        c->ws = kind == LIVE_WS;
        int src = o->src_addrs > 0 ? 1 + c->idx % o->src_addrs : 0;
        c->fd = tcp_connect_from(o->port, src, 1);
        if (c->fd < 0) {
            if (*failed < 3) fprintf(stderr, "sseload: follower %d: connect: %s\n", c->idx, strerror(errno));
            c->failed = 1;
            c->eof = 1;
            (*failed)++;
            if (!c->slow) (*ended)++;
            return;
        }
        if (c->ws) send_ws_request(c->fd, o->port, o->path);
        else send_request(c->fd, o->port, o->path);
        if (c->slow) {
            set_nonblocking(c->fd);
            return;   /* read on a timer, not from epoll */
        }
    } else {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) die("pipe2");
        c->pid = spawn_stdout_to(p[1], o->cmd, 3);
        close(p[1]);
        c->fd = p[0];
    }
    set_nonblocking(c->fd);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    (*open_conns)++;
}

static int mode_live(const struct options *o, int kind) {
    int exec_mode = kind == LIVE_EXEC;
    if (!o->file || o->lines <= 0 || o->clients <= 0 || o->rate <= 0) fail("live needs --file --lines --clients --rate");
    if (exec_mode && (!o->cmd || !o->cmd[0])) fail("live-exec needs -- CMD");
    if (!exec_mode && !o->port) fail("live-sse and live-ws need --port");
    if (exec_mode && o->slow) fail("--slow needs live-sse or live-ws");
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    L.o = o;
    L.n = o->lines;
    L.clients = o->clients;
    L.lat = malloc(sizeof(int64_t) * (size_t)L.n * (size_t)L.clients);
    L.slip = calloc((size_t)L.n, sizeof(int64_t));
    if (!L.lat || !L.slip) fail("out of memory");
    memset(L.lat, 0xff, sizeof(int64_t) * (size_t)L.n * (size_t)L.clients); /* -1 */

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    int nconns = o->clients + o->slow;
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) fail("out of memory");
    int failed = 0;
    int64_t t_connect0 = now_ns();
    /* Network followers are opened at most MAX_PENDING at a time that have not had their response
     * head yet (more are opened as heads arrive, in the loop below): a storm of 10,000 connects
     * overflows the server's listen backlog, and a connection whose handshake ACK was dropped can
     * stall for many seconds; browsers arriving over time do not do that. */
    int next_open = 0, heads_seen = 0, open_conns = 0, ended = 0;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->idx = i;
        c->on_line = live_line;
        c->last_seq = -1;
        c->slow = i >= o->clients;
        c->fd = -1;
    }
    if (exec_mode) {
        for (int i = 0; i < nconns; i++) open_follower(&conns[i], o, kind, ep, &failed, &open_conns, &ended);
        next_open = o->clients;
    } else {
        for (int i = o->clients; i < nconns; i++) open_follower(&conns[i], o, kind, ep, &failed, &open_conns, &ended);
        for (; next_open < o->clients && next_open < MAX_PENDING; next_open++)
            open_follower(&conns[next_open], o, kind, ep, &failed, &open_conns, &ended);
    }
    double connect_s = -1;
    if (next_open >= o->clients) connect_s = (now_ns() - t_connect0) / 1e9;

    /* The writer starts once every network follower is open and answered (or after half the sync
     * timeout): new connections then do not compete with lines being fanned out to the others. */
    pthread_t writer;
    int writer_started = 0;
    int64_t start_writer_by = now_ns() + (int64_t)(o->sync_timeout * 0.5e9);

    char *buf = malloc(LIVE_READ);
    struct epoll_event evs[256];
    int ready = 0;
    int64_t slow_period = 100 * 1000 * 1000, next_slow = now_ns() + slow_period;
    long long slow_closed = 0;
    int64_t next_progress = now_ns() + 5000000000LL;
    size_t slow_chunk = (size_t)(o->slow_bps / 10 > 0 ? o->slow_bps / 10 : 1);
    long long early_eof = 0;
    double grace = 5.0;
    int64_t hard_deadline = now_ns() + (int64_t)(o->timeout * 1e9);
    const char *why = "ok";
    long long wakeups = 0, reads = 0;
    while (1) {
        int n = epoll_wait(ep, evs, 256, 20);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        if (n > 0) wakeups++;
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            while (1) {
                ssize_t r = read(c->fd, buf, LIVE_READ);
                if (r > 0) {
                    c->t_recv = now_ns();
                    reads++;
                    int was_ready = c->ready, had_head = c->head_done;
                    feed(c, buf, (size_t)r);
                    if (!was_ready && c->ready) ready++;
                    if (!had_head && c->head_done) heads_seen++;
                    if (c->eof) {   /* a non-200 answer, or a WebSocket close */
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                        open_conns--;
                        if (!c->ready) ended++;
                        early_eof++;
                        break;
                    }
                    if (r < LIVE_READ) break;
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    c->eof = 1;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    open_conns--;
                    if (!c->ready) { ended++; c->failed = 1; }
                    early_eof++;
                    if (early_eof <= 3) fprintf(stderr, "sseload: follower %d ended early\n", c->idx);
                    break;
                }
                if (errno == EAGAIN) break;
            }
        }
        while (next_open < o->clients && next_open - heads_seen - (int)early_eof < MAX_PENDING) {
            open_follower(&conns[next_open++], o, kind, ep, &failed, &open_conns, &ended);
        }
        if (!writer_started && (exec_mode || (next_open >= o->clients && heads_seen + (int)early_eof >= next_open)
                                || now_ns() > start_writer_by)) {
            if (pthread_create(&writer, NULL, writer_main, NULL) != 0) fail("pthread_create");
            writer_started = 1;
            connect_s = (now_ns() - t_connect0) / 1e9;   /* every follower open and answered */
        }
        if (!atomic_load(&L.all_ready) && now_ns() > next_progress) {
            /* Progress of a slow start (many followers), so a sync that never completes says why. */
            next_progress = now_ns() + 5000000000LL;
            int heads = 0;
            for (int i = 0; i < o->clients; i++) heads += conns[i].head_done;
            fprintf(stderr, "sseload: %.0f s: %d of %d followers answered, %d synced, %d ended\n",
                    (now_ns() - t_connect0) / 1e9, heads, o->clients, ready, ended);
        }
        /* Followers whose connection failed or ended before it synced (a peer's limit) are left out. */
        if (!atomic_load(&L.all_ready) && ready > 0 && ready + ended >= o->clients) atomic_store(&L.all_ready, 1);
        int ws = atomic_load(&L.writer_state);
        int64_t now = now_ns();
        if (o->slow && now >= next_slow) {
            /* Slow readers: slow_bps bytes per second each, in ten sips. */
            next_slow += slow_period;
            if (next_slow < now) next_slow = now + slow_period;
            for (int i = o->clients; i < nconns; i++) {
                struct conn *c = &conns[i];
                if (c->eof) continue;
                ssize_t r = read(c->fd, buf, slow_chunk);
                if (r > 0) { c->t_recv = now; feed(c, buf, (size_t)r); }
                else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    c->eof = 1;
                    slow_closed++;
                }
            }
        }
        if (ws == 2) { why = "writer failed (sync)"; break; }
        if (ws == 1) {
            int complete = 1;
            for (int i = 0; i < o->clients && complete; i++) complete = conns[i].failed || conns[i].got >= L.n;
            if (complete) break;
            if (now > atomic_load(&L.writer_done_ns) + (int64_t)(grace * 1e9)) { why = "lines missing after 5 s grace"; break; }
        }
        if (now > hard_deadline) { why = "timeout"; break; }
        if (open_conns == 0 && next_open >= o->clients) { why = "all followers ended"; break; }
    }
    if (failed + ended > 0 && strcmp(why, "ok") == 0) why = "some followers failed to connect or ended";
    if (atomic_load(&L.writer_state) == 0) {
        /* Timed out while writing: the writer cannot be stopped cleanly; report what we have. */
        why = "timeout while writing";
    } else {
        pthread_join(writer, NULL);
    }
    double self_cpu = rusage_cpu(RUSAGE_SELF);
    double child_cpu = 0;
    long long slow_got_min = -1, slow_got_max = 0, slow_dups = 0, slow_reordered = 0, slow_bad = 0;
    uint64_t slow_bytes = 0;
    for (int i = o->clients; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (slow_got_min < 0 || c->got < slow_got_min) slow_got_min = c->got;
        if (c->got > slow_got_max) slow_got_max = c->got;
        slow_dups += c->dups; slow_reordered += c->reordered; slow_bad += c->bad; slow_bytes += c->bytes;
    }
    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd > 0) close(conns[i].fd);
        if (conns[i].pid > 0) kill(conns[i].pid, SIGTERM);
    }
    if (exec_mode) {
        for (int i = 0; i < o->clients; i++) { int st; waitpid(conns[i].pid, &st, 0); }
        child_cpu = rusage_cpu(RUSAGE_CHILDREN);
    }

    /* Gather. */
    size_t total = (size_t)L.n * (size_t)o->clients;
    int64_t *all = malloc(sizeof(int64_t) * total);
    int64_t *worst = malloc(sizeof(int64_t) * (size_t)L.n);
    size_t got = 0, nworst = 0;
    long long dups = 0, reordered = 0, bad = 0, incomplete = 0;
    for (long long s = 0; s < L.n; s++) {
        int64_t w = -1;
        int all_got = 1;
        for (int i = 0; i < o->clients; i++) {
            int64_t v = L.lat[(size_t)i * (size_t)L.n + (size_t)s];
            if (v >= 0) { all[got++] = v; if (v > w) w = v; } else all_got = 0;
        }
        if (all_got) worst[nworst++] = w;
    }
    for (int i = 0; i < o->clients; i++) {
        dups += conns[i].dups;
        reordered += conns[i].reordered;
        bad += conns[i].bad;
        if (conns[i].got < L.n) incomplete++;
    }
    qsort(all, got, sizeof(int64_t), cmp_i64);
    qsort(worst, nworst, sizeof(int64_t), cmp_i64);
    qsort(L.slip, (size_t)L.n, sizeof(int64_t), cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < got; i++) sum += (double)all[i];
    long long failed_clients = 0;
    for (int i = 0; i < o->clients; i++) if (conns[i].failed) failed_clients++;
    int ok = got == total && dups == 0 && reordered == 0 && bad == 0 && strcmp(why, "ok") == 0 &&
             slow_dups == 0 && slow_reordered == 0 && slow_bad == 0;
    double wrote_s = (atomic_load(&L.writer_done_ns) - L.writer_start_ns) / 1e9;
#define US(x) ((x) < 0 ? -1.0 : (x) / 1e3)
    /* The same percentiles per second of writing: a latency that grows through the run means the
     * subject cannot keep up (a queue builds); a flat one is a steady cost. */
    char trend[8192];
    size_t tl = 0;
    long long per_bucket = (long long)o->rate;
    int64_t *bucket = malloc(sizeof(int64_t) * (size_t)per_bucket * (size_t)o->clients);
    tl += (size_t)snprintf(trend + tl, sizeof trend - tl, "\"by_second\":[");
    for (long long b0 = 0; b0 < L.n && tl < sizeof trend - 200; b0 += per_bucket) {
        size_t nb = 0;
        for (long long s = b0; s < b0 + per_bucket && s < L.n; s++)
            for (int i = 0; i < o->clients; i++) {
                int64_t v = L.lat[(size_t)i * (size_t)L.n + (size_t)s];
                if (v >= 0) bucket[nb++] = v;
            }
        qsort(bucket, nb, sizeof(int64_t), cmp_i64);
        tl += (size_t)snprintf(trend + tl, sizeof trend - tl, "%s[%.1f,%.1f,%.1f]", b0 ? "," : "",
                               US(pct(bucket, nb, 0.5)), US(pct(bucket, nb, 0.99)), nb ? US(bucket[nb - 1]) : -1.0);
    }
    snprintf(trend + tl, sizeof trend - tl, "]");
    printf("{\"ok\":%s,\"why\":\"%s\",\"clients\":%d,\"lines\":%lld,\"expected\":%zu,\"received\":%zu,"
           "\"missing\":%zu,\"duplicates\":%lld,\"reordered\":%lld,\"bad\":%lld,\"incomplete_clients\":%lld,"
           "\"early_eof\":%lld,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,"
           "\"slowest_client_p50_us\":%.1f,\"slowest_client_p99_us\":%.1f,"
           "\"writer_slip_p50_us\":%.1f,\"writer_slip_p99_us\":%.1f,\"writer_slip_max_us\":%.1f,"
           "\"write_seconds\":%.3f,\"sync_lines\":%lld,\"wakeups\":%lld,\"reads\":%lld,"
           "\"client_cpu_s\":%.4f,\"child_cpu_s\":%.4f,\"writer_rt\":%s,"
           "\"failed_clients\":%lld,\"connect_s\":%.3f,\"slow\":%d,\"slow_closed\":%lld,\"slow_got_min\":%lld,"
           "\"slow_got_max\":%lld,\"slow_bytes\":%llu,\"slow_dups\":%lld,\"slow_reordered\":%lld,%s}\n",
           ok ? "true" : "false", why, o->clients, L.n, total, got, total - got, dups, reordered, bad, incomplete,
           early_eof,
           US(pct(all, got, 0.50)), US(pct(all, got, 0.90)), US(pct(all, got, 0.99)), US(pct(all, got, 0.999)),
           got ? US(all[got - 1]) : -1.0, got ? sum / (double)got / 1e3 : -1.0,
           US(pct(worst, nworst, 0.50)), US(pct(worst, nworst, 0.99)),
           US(pct(L.slip, (size_t)L.n, 0.50)), US(pct(L.slip, (size_t)L.n, 0.99)), US(L.slip[L.n - 1]),
           wrote_s, L.syncs, wakeups, reads, self_cpu, child_cpu, L.writer_rt ? "true" : "false",
           failed_clients, connect_s, o->slow, slow_closed, slow_got_min, slow_got_max, (unsigned long long)slow_bytes,
           slow_dups, slow_reordered, trend);
    fflush(stdout);
    if (atomic_load(&L.writer_state) == 0) _exit(ok ? 0 : 1);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    struct options o;
    parse_options(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(o.mode, "replay") == 0) return mode_replay(&o);
    if (strcmp(o.mode, "pipe-tcp") == 0) return mode_pipe_tcp(&o);
    if (strcmp(o.mode, "live-sse") == 0) return mode_live(&o, LIVE_SSE);
    if (strcmp(o.mode, "live-exec") == 0) return mode_live(&o, LIVE_EXEC);
    if (strcmp(o.mode, "live-ws") == 0) return mode_live(&o, LIVE_WS);
    fprintf(stderr, "sseload: unknown mode %s\n", o.mode);
    return 2;
}
