/* switch.c - the emulated home network: a userspace Ethernet switch whose
 * ports are TAP devices, one inside each board's network namespace.
 *
 * The kernel here has no sch_netem, so delay, jitter and loss cannot be added
 * with tc. Instead every frame a board sends crosses two emulated links:
 *
 *     board A --[A's link, upstream]--> switch --[B's link, downstream]--> board B
 *
 * and each link direction is a FIFO with
 *   - a rate: the link serializes frames one after another, each taking
 *     (frame + 24 bytes of preamble, inter-frame gap and FCS) * 8 / rate
 *     seconds, i.e. a token bucket one frame deep; a frame that would wait
 *     behind more than `queue` bytes is dropped (tail drop, like a real
 *     switch port);
 *   - a one-way propagation delay, plus a uniform jitter in [-jitter,
 *     +jitter]; frames never overtake each other (a later frame leaves no
 *     earlier than the one before it), so TCP sees delay variation but no
 *     reordering;
 *   - a loss probability, drawn from a seeded generator per link direction so
 *     that a run with the same seed drops the same frames of the same
 *     traffic.
 * So the one-way latency between boards A and B is delay_A + delay_B plus the
 * serialization on both links, and their bandwidth is min(rate_A, rate_B).
 *
 * The switch learns source MAC addresses and floods broadcasts and frames for
 * unknown addresses to every other port. Frames are timestamped on arrival
 * and kept in one time-ordered heap of pending link crossings; the main loop
 * sleeps in ppoll() until the next frame is due or a TAP has data.
 *
 * Usage (root; netemu.sh runs it):
 *   switch [--seed N] [--ready FILE] [--stats FILE]
 *          --port netns=NAME,dev=IF[,rate=BIT_PER_S][,delay=US][,jitter=US][,loss=PERCENT][,queue=BYTES] ...
 * Each TAP is created inside the named namespace (/var/run/netns/NAME, as
 * made by `ip netns add`), so no interface ever appears in the root
 * namespace. The TAPs vanish when the switch exits; SIGINT/SIGTERM end it
 * cleanly and write the per-port counters to --stats; SIGUSR1 writes them
 * without stopping (netemu.sh stats). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64
#define MAX_FRAME 65536
#define WIRE_OVERHEAD 24    /* preamble 8 + inter-frame gap 12 + FCS 4 bytes */
#define MAC_TABLE 256

typedef struct hop {   /* one direction of a board's link */
    double rate;           /* bit/s; 0 = unlimited */
    int64_t delay, jitter; /* ns */
    double loss;           /* probability 0..1 */
    int64_t queue;         /* bytes that may wait for the wire */
    int64_t busy_until;    /* when the wire finishes the last frame */
    int64_t last_out;      /* arrival time of the last frame (FIFO order) */
    uint64_t rng;
    uint64_t frames, bytes, lost, dropped;
} hop;

typedef struct port {
    char netns[64], dev[IFNAMSIZ];
    int fd;
    hop up, down;          /* board -> switch, switch -> board */
    uint64_t write_fail;
} port;

typedef struct event {
    int64_t t;             /* when the frame comes out of the link */
    uint64_t seq;          /* tie-break: equal times keep arrival order */
    int port;              /* the port whose link it crossed */
    int upstream;          /* 1: reached the switch; 0: reached the board */
    int len;
    unsigned char *frame;
} event;

static port ports[MAX_PORTS];
static int n_ports;
static event *heap;
static int heap_n, heap_cap;
static uint64_t heap_seq;
static struct { unsigned char mac[6]; int port; int used; } macs[MAC_TABLE];
static volatile sig_atomic_t stop, dump; /* dump: SIGUSR1 asks for the counters now */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "netemu switch: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* xorshift64*: small, seedable, good enough for loss and jitter draws */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

/* ---- the time-ordered heap of frames in flight ---- */

static int earlier(const event *a, const event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(event e)
{
    if (heap_n == heap_cap) {
        heap_cap = heap_cap ? 2 * heap_cap : 1024;
        heap = realloc(heap, (size_t)heap_cap * sizeof *heap);
        if (!heap) die("out of memory");
    }
    e.seq = heap_seq++;
    int i = heap_n++;
    while (i > 0 && earlier(&e, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = e;
}

static event heap_pop(void)
{
    event top = heap[0], last = heap[--heap_n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= heap_n) break;
        if (c + 1 < heap_n && earlier(&heap[c + 1], &heap[c])) c++;
        if (!earlier(&heap[c], &last)) break;
        heap[i] = heap[c];
        i = c;
    }
    if (heap_n) heap[i] = last;
    return top;
}

/* ---- links ---- */

/* A frame of len bytes enters link l at time t: returns 0 and the time it
 * comes out in *out, or -1 when it is lost or the queue is full. */
static int link_cross(hop *l, int len, int64_t t, int64_t *out)
{
    l->frames++;
    if (l->loss > 0 && uniform(&l->rng) < l->loss) {
        l->lost++;
        return -1;
    }
    int64_t start = t;
    if (l->rate > 0) {
        if (l->busy_until > t) {
            /* bytes still waiting for the wire = waiting time x rate */
            double waiting = (double)(l->busy_until - t) * l->rate / 8e9;
            if (waiting > (double)l->queue) {
                l->dropped++;
                return -1;
            }
            start = l->busy_until;
        }
        l->busy_until = start + (int64_t)((len + WIRE_OVERHEAD) * 8e9 / l->rate);
        start = l->busy_until;
    }
    int64_t d = l->delay;
    if (l->jitter > 0) d += (int64_t)((2 * uniform(&l->rng) - 1) * (double)l->jitter);
    if (d < 0) d = 0;
    int64_t o = start + d;
    if (o < l->last_out) o = l->last_out;   /* FIFO: no overtaking */
    l->last_out = o;
    l->bytes += (uint64_t)len;
    *out = o;
    return 0;
}

static void send_down(int p, const unsigned char *frame, int len, int64_t t)
{
    int64_t out;
    if (link_cross(&ports[p].down, len, t, &out)) return;
    unsigned char *copy = malloc((size_t)len);
    if (!copy) die("out of memory");
    memcpy(copy, frame, (size_t)len);
    heap_push((event){.t = out, .port = p, .upstream = 0, .len = len, .frame = copy});
}

/* ---- the switch fabric: MAC learning and flooding ---- */

static unsigned mac_hash(const unsigned char *m)
{
    return (unsigned)(m[0] * 31u + m[1] * 7u + m[2] * 131u + m[3] * 17u + m[4] * 71u + m[5]) % MAC_TABLE;
}

static void mac_learn(const unsigned char *m, int p)
{
    if (m[0] & 1) return;   /* group addresses are never sources */
    unsigned h = mac_hash(m);
    for (unsigned k = 0; k < MAC_TABLE; k++, h = (h + 1) % MAC_TABLE) {
        if (!macs[h].used || !memcmp(macs[h].mac, m, 6)) {
            memcpy(macs[h].mac, m, 6);
            macs[h].port = p;
            macs[h].used = 1;
            return;
        }
    }
}

static int mac_lookup(const unsigned char *m)
{
    if (m[0] & 1) return -1;   /* broadcast or multicast: flood */
    unsigned h = mac_hash(m);
    for (unsigned k = 0; k < MAC_TABLE && macs[h].used; k++, h = (h + 1) % MAC_TABLE)
        if (!memcmp(macs[h].mac, m, 6)) return macs[h].port;
    return -1;
}

/* A frame from port p has crossed its upstream hop at time t. */
static void forward(int p, const unsigned char *frame, int len, int64_t t)
{
    mac_learn(frame + 6, p);
    int dst = mac_lookup(frame);
    if (dst == p) return;
    if (dst >= 0) {
        send_down(dst, frame, len, t);
        return;
    }
    for (int q = 0; q < n_ports; q++)
        if (q != p) send_down(q, frame, len, t);
}

/* ---- set-up ---- */

static void parse_port(char *spec, uint64_t seed)
{
    if (n_ports == MAX_PORTS) {
        fprintf(stderr, "netemu switch: at most %d ports\n", MAX_PORTS);
        exit(2);
    }
    port *p = &ports[n_ports];
    hop l = {.queue = 1 << 20};
    for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
        char *v = strchr(kv, '=');
        if (!v) goto bad;
        *v++ = 0;
        if (!strcmp(kv, "netns")) snprintf(p->netns, sizeof p->netns, "%s", v);
        else if (!strcmp(kv, "dev")) snprintf(p->dev, sizeof p->dev, "%s", v);
        else if (!strcmp(kv, "rate")) l.rate = atof(v);
        else if (!strcmp(kv, "delay")) l.delay = (int64_t)(atof(v) * 1000);
        else if (!strcmp(kv, "jitter")) l.jitter = (int64_t)(atof(v) * 1000);
        else if (!strcmp(kv, "loss")) l.loss = atof(v) / 100;
        else if (!strcmp(kv, "queue")) l.queue = atoll(v);
        else goto bad;
    }
    if (!p->netns[0] || !p->dev[0]) goto bad;
    p->up = p->down = l;
    /* distinct, reproducible streams per port and direction */
    p->up.rng = seed * 0x9E3779B97F4A7C15ull + 2 * (uint64_t)n_ports + 1;
    p->down.rng = seed * 0x9E3779B97F4A7C15ull + 2 * (uint64_t)n_ports + 2;
    for (int k = 0; k < 8; k++) {
        uniform(&p->up.rng);
        uniform(&p->down.rng);
    }
    n_ports++;
    return;
bad:
    fprintf(stderr, "netemu switch: bad --port '%s'; expected netns=NAME,dev=IF[,rate=BIT_PER_S][,delay=US]"
                    "[,jitter=US][,loss=PERCENT][,queue=BYTES]\n", spec);
    exit(2);
}

/* Creates port p's TAP inside its namespace: a TAP is created in the network
 * namespace of the process that opens /dev/net/tun, so enter it, open, and
 * come back. */
static void open_tap(port *p, int home)
{
    char path[128];
    snprintf(path, sizeof path, "/var/run/netns/%.63s", p->netns);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) die(path);
    if (setns(ns, CLONE_NEWNET)) die("setns");
    close(ns);
    p->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0) die("/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", p->dev);
    if (ioctl(p->fd, TUNSETIFF, &ifr)) die(p->dev);
    if (setns(home, CLONE_NEWNET)) die("setns back");
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1) dump = 1;
    else stop = 1;
}

static void write_stats(const char *path)
{
    char tmp[4096];
    if (!path || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return;
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "# port netns dev up_frames up_bytes up_lost up_queue_drops down_frames down_bytes down_lost "
               "down_queue_drops tap_write_fail\n");
    for (int i = 0; i < n_ports; i++) {
        port *p = &ports[i];
        fprintf(f, "%d %s %s %llu %llu %llu %llu %llu %llu %llu %llu %llu\n", i, p->netns, p->dev,
                (unsigned long long)p->up.frames, (unsigned long long)p->up.bytes, (unsigned long long)p->up.lost,
                (unsigned long long)p->up.dropped, (unsigned long long)p->down.frames,
                (unsigned long long)p->down.bytes, (unsigned long long)p->down.lost,
                (unsigned long long)p->down.dropped, (unsigned long long)p->write_fail);
    }
    if (fclose(f) == 0) rename(tmp, path);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    const char *ready = NULL, *stats = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--ready") && i + 1 < argc) ready = argv[++i];
        else if (!strcmp(argv[i], "--stats") && i + 1 < argc) stats = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) parse_port(argv[++i], seed);
        else {
            fprintf(stderr, "usage: switch [--seed N] [--ready FILE] [--stats FILE] --port netns=NAME,dev=IF"
                            "[,rate=BIT_PER_S][,delay=US][,jitter=US][,loss=PERCENT][,queue=BYTES] ...\n");
            return 2;
        }
    }
    if (n_ports < 2) {
        fprintf(stderr, "netemu switch: needs at least 2 --port\n");
        return 2;
    }
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) die("/proc/self/ns/net");
    for (int i = 0; i < n_ports; i++) open_tap(&ports[i], home);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1000UL);   /* wake within ~1 us of the due time, not 50 us */

    if (ready) {
        FILE *f = fopen(ready, "w");
        if (!f) die(ready);
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }

    struct pollfd pfd[MAX_PORTS];
    for (int i = 0; i < n_ports; i++) pfd[i] = (struct pollfd){.fd = ports[i].fd, .events = POLLIN};
    static unsigned char buf[MAX_FRAME];
    while (!stop) {
        if (dump) { /* netemu.sh stats: the counters so far, written whole (tmp + rename) */
            dump = 0;
            write_stats(stats);
        }
        /* 1. every frame that is due comes out of its link */
        int64_t now = now_ns();
        while (heap_n && heap[0].t <= now) {
            event e = heap_pop();
            if (e.upstream) {
                forward(e.port, e.frame, e.len, e.t);
            } else if (write(ports[e.port].fd, e.frame, (size_t)e.len) != e.len) {
                ports[e.port].write_fail++;   /* the board's receive queue is full */
            }
            free(e.frame);
            now = now_ns();
        }
        /* 2. sleep until the next one is due or a board sends */
        struct timespec ts, *tp = NULL;
        if (heap_n) {
            int64_t wait = heap[0].t - now;
            if (wait < 0) wait = 0;
            ts.tv_sec = wait / 1000000000;
            ts.tv_nsec = wait % 1000000000;
            tp = &ts;
        }
        int r = ppoll(pfd, (nfds_t)n_ports, tp, NULL);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("ppoll");
        }
        if (r == 0) continue;
        /* 3. frames the boards sent enter their upstream links */
        now = now_ns();
        for (int i = 0; i < n_ports; i++) {
            if (!(pfd[i].revents & POLLIN)) continue;
            for (int k = 0; k < 256; k++) {
                ssize_t n = read(ports[i].fd, buf, sizeof buf);
                if (n < 0) break;
                if (n < 14) continue;
                int64_t out;
                if (link_cross(&ports[i].up, (int)n, now, &out)) continue;
                unsigned char *copy = malloc((size_t)n);
                if (!copy) die("out of memory");
                memcpy(copy, buf, (size_t)n);
                heap_push((event){.t = out, .port = i, .upstream = 1, .len = (int)n, .frame = copy});
            }
        }
    }
    write_stats(stats);
    return 0;
}
