/*
 * bus_printer: a tws-bridge bus consumer in C, written from docs/bus.md alone.
 *
 *   bus_printer [--rep ENDPOINT] [--pub ENDPOINT] [--count N] [--lease SECONDS] INSTRUMENT...
 *
 * Subscribes each INSTRUMENT (short form, kind "quote") on the bridge's request socket, SUBs to
 * each reply's exact topic, drops queued messages at or below the reply's `seq` (the snapshot),
 * prints one line per data message, reports sequence gaps, renews the leases every lease/3 s and,
 * after N messages or on SIGINT/SIGTERM, unsubscribes every id and exits 0. Exit 1 on a failed
 * or timed-out subscribe (the bridge's `error` and `code` go to stderr), 2 on a usage error.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -O2 bus_printer.c -lzmq -lmsgpackc
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <zmq.h>

#define REQUEST_TIMEOUT_MS 8000 /* docs/bus.md: the bridge answers within 7 s; wait >= 8 s */
#define DEFAULT_LEASE 30.0

struct sub {
    const char *instrument; /* as given on the command line */
    char *id;               /* subscription id from the reply */
    char *topic;            /* the reply's exact topic */
    size_t topic_len;
    double lease;      /* seconds granted */
    int64_t last_seq;  /* newest seq seen (starts at the reply's seq) */
    bool seen;         /* a message newer than the snapshot has arrived */
};

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- msgpack helpers: every accessor tolerates a missing or oddly typed key ---------- */

static const msgpack_object *map_get(const msgpack_object *map, const char *key) {
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static bool as_int64(const msgpack_object *o, int64_t *out) {
    if (o == NULL) return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

static bool as_double(const msgpack_object *o, double *out) {
    int64_t i;
    if (o == NULL) return false;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        *out = o->via.f64;
        return true;
    }
    if (as_int64(o, &i)) {
        *out = (double)i;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) { /* above INT64_MAX */
        *out = (double)o->via.u64;
        return true;
    }
    return false;
}

/* A NUL-terminated copy of a str value, or NULL when absent or not a str. */
static char *dup_str(const msgpack_object *o) {
    if (o == NULL || o->type != MSGPACK_OBJECT_STR) return NULL;
    char *s = malloc(o->via.str.size + 1);
    if (s == NULL) return NULL;
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

/* Print bytes, escaping anything that is not printable ASCII so a line stays one line. */
static void put_bytes(FILE *f, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

/* A scalar as text: numbers as numbers, nil as "-", str as is, anything else as "?". */
static void put_value(FILE *f, const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("-", f); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", f); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%" PRIu64, o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%" PRId64, o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: fprintf(f, "%.15g", o->via.f64); break;
    case MSGPACK_OBJECT_STR: put_bytes(f, o->via.str.ptr, o->via.str.size); break;
    default: fputs("?", f); break;
    }
}

/* A str field for a message, "(none)" when absent or not a str. */
static void put_str_field(FILE *f, const msgpack_object *map, const char *key) {
    const msgpack_object *o = map_get(map, key);
    if (o != NULL && o->type == MSGPACK_OBJECT_STR)
        put_bytes(f, o->via.str.ptr, o->via.str.size);
    else if (o != NULL)
        put_value(f, o);
    else
        fputs("(none)", f);
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* ---------- the request socket ---------- */

struct requester {
    void *ctx;
    const char *endpoint;
    void *sock;
};

static int requester_open(struct requester *r) {
    r->sock = zmq_socket(r->ctx, ZMQ_REQ);
    if (r->sock == NULL) return -1;
    int linger = 0;
    zmq_setsockopt(r->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(r->sock, r->endpoint) != 0) {
        fprintf(stderr, "bus_printer: cannot connect request socket to %s: %s\n", r->endpoint, zmq_strerror(zmq_errno()));
        zmq_close(r->sock);
        r->sock = NULL;
        return -1;
    }
    return 0;
}

/*
 * One request/reply round trip. On success returns 0 with the reply unpacked into *reply (the
 * caller destroys it) and the raw frame kept in *frame (the caller closes it). On a timeout the
 * REQ socket is closed and a new one opened (a REQ socket cannot send again until it has
 * received), and -1 is returned. Signals do not cut the wait short: a reply we asked for (a
 * subscription id, say) is needed to clean up.
 */
static int request(struct requester *r, const msgpack_sbuffer *body, zmq_msg_t *frame, msgpack_unpacked *reply,
                   const char *what) {
    if (r->sock == NULL && requester_open(r) != 0) return -1;
    if (zmq_send(r->sock, body->data, body->size, 0) < 0) {
        fprintf(stderr, "bus_printer: %s: send failed: %s\n", what, zmq_strerror(zmq_errno()));
        zmq_close(r->sock);
        r->sock = NULL;
        return -1;
    }
    double deadline = now_s() + REQUEST_TIMEOUT_MS / 1000.0;
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) {
            fprintf(stderr, "bus_printer: %s: no reply from the bridge at %s within %d s\n", what, r->endpoint,
                    REQUEST_TIMEOUT_MS / 1000);
            zmq_close(r->sock);
            r->sock = NULL;
            return -1;
        }
        zmq_pollitem_t item = {r->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, (long)(left * 1000) + 1);
        if (n < 0 && zmq_errno() == EINTR) continue;
        if (n < 0) {
            fprintf(stderr, "bus_printer: %s: poll failed: %s\n", what, zmq_strerror(zmq_errno()));
            return -1;
        }
        if (n == 0) continue;
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, r->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(frame);
            if (zmq_errno() == EINTR || zmq_errno() == EAGAIN) continue;
            fprintf(stderr, "bus_printer: %s: receive failed: %s\n", what, zmq_strerror(zmq_errno()));
            return -1;
        }
        break;
    }
    msgpack_unpacked_init(reply);
    size_t off = 0;
    if (msgpack_unpack_next(reply, zmq_msg_data(frame), zmq_msg_size(frame), &off) != MSGPACK_UNPACK_SUCCESS ||
        reply->data.type != MSGPACK_OBJECT_MAP) {
        fprintf(stderr, "bus_printer: %s: the reply is not a msgpack map\n", what);
        msgpack_unpacked_destroy(reply);
        zmq_msg_close(frame);
        return -1;
    }
    return 0;
}

static bool reply_ok(const msgpack_unpacked *reply) {
    const msgpack_object *ok = map_get(&reply->data, "ok");
    return ok != NULL && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean;
}

static void report_failure(const char *what, const msgpack_unpacked *reply) {
    fprintf(stderr, "bus_printer: %s refused: ", what);
    put_str_field(stderr, &reply->data, "error");
    fputs(" (code: ", stderr);
    put_str_field(stderr, &reply->data, "code");
    fputs(")\n", stderr);
}

/* ---------- the operations ---------- */

static int subscribe(struct requester *r, struct sub *s, long lease) {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, lease > 0 ? 4 : 3);
    pack_cstr(&pk, "op");
    pack_cstr(&pk, "subscribe");
    pack_cstr(&pk, "instrument");
    pack_cstr(&pk, s->instrument);
    pack_cstr(&pk, "kind");
    pack_cstr(&pk, "quote");
    if (lease > 0) {
        pack_cstr(&pk, "lease");
        msgpack_pack_long(&pk, lease);
    }

    char what[256];
    snprintf(what, sizeof what, "subscribe %s", s->instrument);
    zmq_msg_t frame;
    msgpack_unpacked reply;
    int rc = request(r, &buf, &frame, &reply, what);
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0) return -1;

    rc = -1;
    if (!reply_ok(&reply)) {
        report_failure(what, &reply);
        goto done;
    }
    s->id = dup_str(map_get(&reply.data, "id"));
    s->topic = dup_str(map_get(&reply.data, "topic"));
    if (s->id == NULL || s->topic == NULL) {
        fprintf(stderr, "bus_printer: %s: the reply has no str `id` or `topic`\n", what);
        /* keep an id we did get, so it is unsubscribed */
        goto done;
    }
    s->topic_len = strlen(s->topic);
    if (!as_int64(map_get(&reply.data, "seq"), &s->last_seq) || s->last_seq < 0) s->last_seq = 0;
    if (!as_double(map_get(&reply.data, "lease"), &s->lease) || !(s->lease > 0)) s->lease = DEFAULT_LEASE;
    const msgpack_object *latest = map_get(&reply.data, "latest");
    fprintf(stderr, "bus_printer: %s -> topic %s, id %s, lease %g s, snapshot seq %" PRId64 " with %u fields\n",
            s->instrument, s->topic, s->id, s->lease, s->last_seq,
            latest != NULL && latest->type == MSGPACK_OBJECT_MAP ? latest->via.map.size : 0u);
    rc = 0;
done:
    msgpack_unpacked_destroy(&reply);
    zmq_msg_close(&frame);
    return rc;
}

static void renew(struct requester *r, struct sub *subs, int nsubs) {
    int nids = 0;
    for (int i = 0; i < nsubs; i++)
        if (subs[i].id != NULL) nids++;
    if (nids == 0) return;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "op");
    pack_cstr(&pk, "renew");
    pack_cstr(&pk, "ids");
    msgpack_pack_array(&pk, (size_t)nids);
    for (int i = 0; i < nsubs; i++)
        if (subs[i].id != NULL) pack_cstr(&pk, subs[i].id);

    zmq_msg_t frame;
    msgpack_unpacked reply;
    int rc = request(r, &buf, &frame, &reply, "renew");
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0) return; /* try again at the next renewal */
    if (!reply_ok(&reply)) {
        report_failure("renew", &reply);
    } else {
        const msgpack_object *unknown = map_get(&reply.data, "unknown");
        if (unknown != NULL && unknown->type == MSGPACK_OBJECT_ARRAY) {
            for (uint32_t i = 0; i < unknown->via.array.size; i++) {
                fputs("bus_printer: the bridge no longer knows subscription ", stderr);
                put_value(stderr, &unknown->via.array.ptr[i]);
                fputs(" (lease lapsed, refused by TWS, or bridge restarted)\n", stderr);
            }
        }
    }
    msgpack_unpacked_destroy(&reply);
    zmq_msg_close(&frame);
}

static void unsubscribe(struct requester *r, struct sub *s) {
    if (s->id == NULL) return;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "op");
    pack_cstr(&pk, "unsubscribe");
    pack_cstr(&pk, "id");
    pack_cstr(&pk, s->id);

    char what[300];
    snprintf(what, sizeof what, "unsubscribe %s (%s)", s->id, s->instrument);
    zmq_msg_t frame;
    msgpack_unpacked reply;
    int rc = request(r, &buf, &frame, &reply, what);
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0) return; /* the lease will lapse on its own */
    if (!reply_ok(&reply)) report_failure(what, &reply);
    msgpack_unpacked_destroy(&reply);
    zmq_msg_close(&frame);
}

/* ---------- data messages ---------- */

/* Receive every frame of one message; returns the number of frames kept (at most 2), -1 on error. */
static int recv_multipart(void *sock, zmq_msg_t parts[2]) {
    int kept = 0;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            for (int i = 0; i < kept; i++) zmq_msg_close(&parts[i]);
            return -1;
        }
        int more = zmq_msg_more(&part);
        if (kept < 2)
            parts[kept++] = part;
        else
            zmq_msg_close(&part); /* an unexpected extra frame */
        if (!more) return kept;
    }
}

/* Handle one data message; returns 1 when a data line was printed, 0 otherwise. */
static int handle_message(zmq_msg_t parts[2], int nparts, struct sub *subs, int nsubs) {
    const char *topic = zmq_msg_data(&parts[0]);
    size_t topic_len = zmq_msg_size(&parts[0]);
    if (nparts != 2) {
        fputs("bus_printer: skipped a message that is not [topic, payload] on ", stderr);
        put_bytes(stderr, topic, topic_len);
        fputc('\n', stderr);
        return 0;
    }
    /* A SUB prefix also matches longer topics (e.g. .../delayed): keep only our exact topics. */
    struct sub *s = NULL;
    for (int i = 0; i < nsubs && s == NULL; i++)
        if (subs[i].topic != NULL && subs[i].topic_len == topic_len && memcmp(subs[i].topic, topic, topic_len) == 0)
            s = &subs[i];
    if (s == NULL) return 0;

    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    size_t off = 0;
    int printed = 0;
    if (msgpack_unpack_next(&msg, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), &off) != MSGPACK_UNPACK_SUCCESS ||
        msg.data.type != MSGPACK_OBJECT_MAP) {
        fprintf(stderr, "bus_printer: skipped a payload that is not a msgpack map on %s\n", s->topic);
        goto done;
    }
    int64_t seq = 0;
    bool has_seq = as_int64(map_get(&msg.data, "seq"), &seq);
    if (has_seq) {
        if (!s->seen && seq <= s->last_seq) goto done; /* already in the snapshot */
        if (s->seen && seq <= s->last_seq)
            fprintf(stderr, "bus_printer: seq went back from %" PRId64 " to %" PRId64 " on %s (bridge restarted?)\n",
                    s->last_seq, seq, s->topic);
        else if (seq > s->last_seq + 1)
            printf("gap: %" PRId64 " lost on %s\n", seq - s->last_seq - 1, s->topic);
        s->last_seq = seq;
        s->seen = true;
    }

    fputs(s->topic, stdout);
    fputc(' ', stdout);
    put_str_field(stdout, &msg.data, "event");
    fputs(" seq=", stdout);
    if (has_seq)
        printf("%" PRId64, seq);
    else
        fputs("-", stdout);
    static const char *const fields[] = {"tick", "price", "size", "value", "code", "message"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const msgpack_object *o = map_get(&msg.data, fields[i]);
        if (o == NULL) continue;
        printf(" %s=", fields[i]);
        put_value(stdout, o);
    }
    fputc('\n', stdout);
    printed = 1;
done:
    msgpack_unpacked_destroy(&msg);
    return printed;
}

/* ---------- main ---------- */

static void usage(void) {
    fputs("usage: bus_printer [--rep ENDPOINT] [--pub ENDPOINT] [--count N] [--lease SECONDS] INSTRUMENT...\n"
          "  --rep   the bridge's request socket (default tcp://127.0.0.1:5556)\n"
          "  --pub   the bridge's data socket (default tcp://127.0.0.1:5555)\n"
          "  --count exit after N data messages (default: run until SIGINT/SIGTERM)\n"
          "  --lease lease to ask for, seconds 1..3600 (default: the bridge's, 30)\n"
          "  INSTRUMENT  short form, e.g. AAPL, BTC.CRYPTO, EUR.CASH, ES.FUT.CME.USD.202612\n",
          stderr);
}

int main(int argc, char **argv) {
    const char *rep = "tcp://127.0.0.1:5556";
    const char *pub = "tcp://127.0.0.1:5555";
    long long count = 0;
    long lease = 0; /* 0: the bridge's default */
    const char **instruments = calloc((size_t)argc, sizeof *instruments);
    int ninstr = 0;
    if (instruments == NULL) return 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (strcmp(a, "--rep") == 0 || strcmp(a, "--pub") == 0 || strcmp(a, "--count") == 0 ||
                   strcmp(a, "--lease") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bus_printer: %s needs a value\n", a);
                usage();
                return 2;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--rep") == 0) {
                rep = v;
            } else if (strcmp(a, "--pub") == 0) {
                pub = v;
            } else {
                char *end = NULL;
                errno = 0;
                long long n = strtoll(v, &end, 10);
                bool is_count = strcmp(a, "--count") == 0;
                if (errno != 0 || end == v || *end != '\0' || (is_count ? n < 0 : (n < 1 || n > 3600))) {
                    fprintf(stderr, "bus_printer: %s wants %s, not %s\n", a,
                            is_count ? "a non-negative integer" : "an integer from 1 to 3600", v);
                    return 2;
                }
                if (is_count)
                    count = n;
                else
                    lease = (long)n;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "bus_printer: unknown option %s\n", a);
            usage();
            return 2;
        } else {
            instruments[ninstr++] = a;
        }
    }
    if (ninstr == 0) {
        usage();
        return 2;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int exit_code = 0;
    struct sub *subs = calloc((size_t)ninstr, sizeof *subs);
    void *ctx = zmq_ctx_new();
    if (subs == NULL || ctx == NULL) {
        fputs("bus_printer: out of memory\n", stderr);
        return 1;
    }
    struct requester req = {ctx, rep, NULL};

    /* The SUB socket is connected, and subscribed to the whole kind ("quote/"), before the
       subscribe requests: the exact topic is only known from a reply, and the bridge may publish
       on it right after replying, before an exact SUB set then would reach it. Messages older
       than a reply's snapshot are dropped by seq (docs/bus.md, `subscribe`: the Clone pattern),
       other topics by exact comparison; once every exact topic is SUBscribed the broad prefix is
       dropped (ZeroMQ sends both changes in order on the same connection, so nothing is lost). */
    static const char broad[] = "quote/";
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, broad, sizeof broad - 1);
    if (zmq_connect(sub, pub) != 0) {
        fprintf(stderr, "bus_printer: cannot connect data socket to %s: %s\n", pub, zmq_strerror(zmq_errno()));
        exit_code = 1;
        goto cleanup;
    }

    for (int i = 0; i < ninstr; i++) {
        subs[i].instrument = instruments[i];
        if (subscribe(&req, &subs[i], lease) != 0) {
            exit_code = 1;
            goto cleanup;
        }
        if (zmq_setsockopt(sub, ZMQ_SUBSCRIBE, subs[i].topic, subs[i].topic_len) != 0) {
            fprintf(stderr, "bus_printer: cannot SUB to %s: %s\n", subs[i].topic, zmq_strerror(zmq_errno()));
            exit_code = 1;
            goto cleanup;
        }
    }

    zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, broad, sizeof broad - 1);

    double period = DEFAULT_LEASE;
    for (int i = 0; i < ninstr; i++)
        if (subs[i].lease < period) period = subs[i].lease;
    period /= 3.0;
    double next_renew = now_s() + period;
    long long printed = 0;

    while (!stop_requested && (count == 0 || printed < count)) {
        double wait = next_renew - now_s();
        if (wait <= 0) {
            renew(&req, subs, ninstr);
            next_renew = now_s() + period;
            continue;
        }
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, (long)(wait * 1000) + 1);
        if (n < 0) {
            if (zmq_errno() == EINTR) continue;
            fprintf(stderr, "bus_printer: poll failed: %s\n", zmq_strerror(zmq_errno()));
            exit_code = 1;
            break;
        }
        /* drain what is queued, then check the clock and the stop flag again */
        while (n > 0 && !stop_requested && (count == 0 || printed < count)) {
            zmq_msg_t parts[2];
            int nparts = recv_multipart(sub, parts);
            if (nparts < 0) break; /* EAGAIN: nothing more queued (or EINTR) */
            printed += handle_message(parts, nparts, subs, ninstr);
            for (int i = 0; i < nparts; i++) zmq_msg_close(&parts[i]);
            if (now_s() >= next_renew) break;
        }
    }
    if (stop_requested) fputs("bus_printer: stopping on signal\n", stderr);

cleanup:
    for (int i = 0; i < ninstr; i++) unsubscribe(&req, &subs[i]);
    for (int i = 0; i < ninstr; i++) {
        free(subs[i].id);
        free(subs[i].topic);
    }
    free(subs);
    free(instruments);
    if (req.sock != NULL) zmq_close(req.sock);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return exit_code;
}
