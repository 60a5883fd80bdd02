/*
 * mbx-nats-peer: what NATS itself costs, through cnats alone, on one server. These are
 * the figures mailbox-bridge is judged against: a bridged ping-pong round trip should
 * take at most 1.5x cnats' own request round trip, and bridged 1 -> 1 throughput should
 * reach at least 0.5x cnats' publish-to-subscriber throughput.
 *
 *   request RTT   a responder (async subscription, its own connection) answers each
 *                 request; the requester calls natsConnection_Request in a loop. After a
 *                 warm-up, p50/p99/mean over COUNT requests, in microseconds. Measured
 *                 twice: with natsOptions_SetSendAsap on both connections (each publish
 *                 written at once: cnats' best round trip, and the reference), and with
 *                 cnats' default, where a flusher thread batches writes and a lone
 *                 request waits for it (about a millisecond on Linux).
 *   pub -> sub    one connection publishes MESSAGES messages as fast as it can (one
 *                 natsConnection_Publish each, a flush at the end); another counts them
 *                 in an async subscription. Messages per second at the subscriber, from
 *                 its first message to its last. The subscription's pending limits hold
 *                 every message, so none should be dropped as a slow consumer; any that
 *                 are (or never arrive) are reported and make the exit status 3.
 *                 cnats' default (batched writes) here: its best throughput; written at
 *                 once, every message costs a system call.
 *
 * Usage: mbx-nats-peer [--nats URL] [--count N] [--messages M] [--size BYTES] [--json]
 * Payloads are JSON strings of BYTES bytes (default 120), as mailbox carries.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "../bench_stats.h"

#define RTT_SUBJECT "mbx.bench.rtt"
#define PUBSUB_SUBJECT "mbx.bench.pubsub"
#define REQUEST_TIMEOUT_MS 5000
#define STALL_LIMIT_NS (5 * 1000000000LL) /* no progress for this long: give up */

typedef struct options {
    const char *url;
    long count;    /* requests measured */
    long messages; /* messages published in the throughput run */
    long size;
    bool json;
} options;

typedef struct figures {
    bench_percentiles rtt_us;          /* send-asap: the reference */
    bench_percentiles rtt_buffered_us; /* cnats' default */
    double msgs_per_s;
    int64_t received, dropped, slow_consumer_events;
    double publish_s; /* how long the publisher took, flush included */
} figures;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: mbx-nats-peer [--nats URL] [--count N] [--messages M] [--size BYTES] [--json]\n");
    exit(2);
}

static long positive(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0)
        usage();
    return v;
}

static void parse(int argc, char **argv, options *o)
{
    *o =
        (options){.url = "nats://127.0.0.1:4222", .count = 20000, .messages = 1000000, .size = 120};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--nats") == 0 && has_value)
            o->url = argv[++i];
        else if (strcmp(a, "--count") == 0 && has_value)
            o->count = positive(argv[++i]);
        else if (strcmp(a, "--messages") == 0 && has_value)
            o->messages = positive(argv[++i]);
        else if (strcmp(a, "--size") == 0 && has_value)
            o->size = positive(argv[++i]);
        else if (strcmp(a, "--json") == 0)
            o->json = true;
        else
            usage();
    }
    if (o->size < 2 || o->messages > INT_MAX)
        usage();
}

static void check(natsStatus s, const char *what)
{
    if (s != NATS_OK) {
        fprintf(stderr, "mbx-nats-peer: %s: %s\n", what, natsStatus_GetText(s));
        nats_PrintLastErrorStack(stderr);
        exit(1);
    }
}

/* Slow-consumer reports arrive here (from the library's threads); counted, not fatal. */
static atomic_llong slow_consumer_events;

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    if (err == NATS_SLOW_CONSUMER)
        atomic_fetch_add(&slow_consumer_events, 1);
    else
        fprintf(stderr, "mbx-nats-peer: async error: %s\n", natsStatus_GetText(err));
}

static natsConnection *connect_to(const options *o, const char *name, bool send_asap)
{
    natsOptions *opts;
    natsConnection *nc;
    check(natsOptions_Create(&opts), "natsOptions_Create");
    check(natsOptions_SetURL(opts, o->url), "natsOptions_SetURL");
    check(natsOptions_SetName(opts, name), "natsOptions_SetName");
    check(natsOptions_SetErrorHandler(opts, on_error, NULL), "natsOptions_SetErrorHandler");
    /* Off by default: cnats then leaves sending to its flusher thread, batching writes. */
    check(natsOptions_SetSendAsap(opts, send_asap), "natsOptions_SetSendAsap");
    check(natsConnection_Connect(&nc, opts), o->url);
    natsOptions_Destroy(opts);
    return nc;
}

/* A JSON string of exactly size bytes. */
static char *make_payload(long size)
{
    char *p = malloc((size_t)size);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    memset(p, 'a', (size_t)size);
    p[0] = p[size - 1] = '"';
    return p;
}

/* ---- request round trip ------------------------------------------------------------ */

static void answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub, (void)closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply)
        natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

static void measure_rtt(const options *o, const char *payload, bool send_asap,
                        bench_percentiles *out)
{
    natsConnection *responder = connect_to(o, "mbx-nats-peer responder", send_asap);
    natsConnection *requester = connect_to(o, "mbx-nats-peer requester", send_asap);
    natsSubscription *sub;
    check(natsConnection_Subscribe(&sub, responder, RTT_SUBJECT, answer, NULL),
          "subscribe (responder)");
    check(natsConnection_Flush(responder), "flush (responder)"); /* the server knows it now */

    long warmup = o->count / 10 < 1000 ? 1000 : o->count / 10;
    int64_t *samples = malloc(sizeof *samples * (size_t)o->count);
    if (!samples) {
        perror("malloc");
        exit(1);
    }
    for (long i = -warmup; i < o->count; i++) {
        natsMsg *reply;
        int64_t t0 = now_ns();
        check(natsConnection_Request(&reply, requester, RTT_SUBJECT, payload, (int)o->size,
                                     REQUEST_TIMEOUT_MS),
              "natsConnection_Request");
        int64_t t1 = now_ns();
        if (natsMsg_GetDataLength(reply) != (int)o->size) {
            fprintf(stderr, "mbx-nats-peer: a reply of %d bytes, not %ld\n",
                    natsMsg_GetDataLength(reply), o->size);
            exit(1);
        }
        natsMsg_Destroy(reply);
        if (i >= 0)
            samples[i] = t1 - t0;
    }
    bench_percentiles_of(samples, (size_t)o->count, 1e-3, out);
    free(samples);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(requester);
    natsConnection_Destroy(responder);
}

/* ---- publish to subscriber --------------------------------------------------------- */

/* Written by the subscription's delivery thread only; read by main while it waits. */
static atomic_llong counted, first_ns, last_ns;

static void count(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    int64_t t = now_ns();
    if (atomic_load_explicit(&counted, memory_order_relaxed) == 0)
        atomic_store(&first_ns, t);
    atomic_store(&last_ns, t);
    atomic_fetch_add(&counted, 1);
    natsMsg_Destroy(msg);
}

static void measure_throughput(const options *o, const char *payload, figures *f)
{
    natsConnection *subscriber = connect_to(o, "mbx-nats-peer subscriber", false);
    natsConnection *publisher = connect_to(o, "mbx-nats-peer publisher", false);
    natsSubscription *sub;
    check(natsConnection_Subscribe(&sub, subscriber, PUBSUB_SUBJECT, count, NULL), "subscribe");
    /* Room for every message, so that a slow subscriber shows as a lower rate, never as
     * drops (the default is 65,536 messages). */
    long long bytes = (long long)o->messages * (o->size + 128);
    check(natsSubscription_SetPendingLimits(sub, (int)o->messages,
                                            bytes > INT_MAX ? INT_MAX : (int)bytes),
          "natsSubscription_SetPendingLimits");
    check(natsConnection_Flush(subscriber), "flush (subscriber)");

    int64_t t0 = now_ns();
    for (long i = 0; i < o->messages; i++)
        check(natsConnection_Publish(publisher, PUBSUB_SUBJECT, payload, (int)o->size),
              "natsConnection_Publish");
    check(natsConnection_FlushTimeout(publisher, 30000), "flush (publisher)");
    f->publish_s = (double)(now_ns() - t0) / 1e9;

    /* Wait for the last message, or for progress to stop (something was lost). */
    long long seen = -1;
    int64_t progress_at = now_ns();
    while (atomic_load(&counted) < o->messages) {
        long long c = atomic_load(&counted);
        if (c != seen) {
            seen = c;
            progress_at = now_ns();
        } else if (now_ns() - progress_at > STALL_LIMIT_NS) {
            break;
        }
        nats_Sleep(5);
    }
    int64_t dropped = 0;
    natsSubscription_GetDropped(sub, &dropped);
    f->received = atomic_load(&counted);
    f->dropped = dropped;
    f->slow_consumer_events = atomic_load(&slow_consumer_events);
    int64_t span = atomic_load(&last_ns) - atomic_load(&first_ns);
    f->msgs_per_s =
        f->received > 1 && span > 0 ? (double)(f->received - 1) / ((double)span / 1e9) : 0;
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(publisher);
    natsConnection_Destroy(subscriber);
}

/* ---- report ------------------------------------------------------------------------ */

static void report(const options *o, const figures *f)
{
    if (o->json) {
        printf("{\"transport\":\"nats\",\"url\":\"%s\",\"size\":%ld,"
               "\"requests\":%ld,\"rtt_p50_us\":%.2f,\"rtt_p99_us\":%.2f,\"rtt_mean_us\":%.2f,"
               "\"rtt_buffered_p50_us\":%.2f,\"rtt_buffered_p99_us\":%.2f,\"rtt_buffered_mean_us\":"
               "%.2f,"
               "\"messages\":%ld,\"received\":%lld,\"dropped_slow_consumer\":%lld,"
               "\"slow_consumer_events\":%lld,\"pubsub_msgs_per_s\":%.0f,\"publish_s\":%.3f}\n",
               o->url, o->size, o->count, f->rtt_us.p50, f->rtt_us.p99, f->rtt_us.mean,
               f->rtt_buffered_us.p50, f->rtt_buffered_us.p99, f->rtt_buffered_us.mean, o->messages,
               (long long)f->received, (long long)f->dropped, (long long)f->slow_consumer_events,
               f->msgs_per_s, f->publish_s);
        return;
    }
    printf("nats request rtt p50: %.1f us (send-asap; %ld requests of %ld bytes)\n", f->rtt_us.p50,
           o->count, o->size);
    printf("nats request rtt p99: %.1f us\n", f->rtt_us.p99);
    printf("nats request rtt mean: %.1f us\n", f->rtt_us.mean);
    printf("nats request rtt, cnats' default buffered writes: p50 %.1f us, p99 %.1f us, mean %.1f "
           "us\n",
           f->rtt_buffered_us.p50, f->rtt_buffered_us.p99, f->rtt_buffered_us.mean);
    printf("nats pub->sub throughput: %.0f msgs/s (%lld of %ld received)\n", f->msgs_per_s,
           (long long)f->received, o->messages);
    printf("nats pub->sub dropped as slow consumer: %lld\n", (long long)f->dropped);
}

int main(int argc, char **argv)
{
    options o;
    parse(argc, argv, &o);
    char *payload = make_payload(o.size);
    figures f = {0};
    measure_rtt(&o, payload, true, &f.rtt_us);
    measure_rtt(&o, payload, false, &f.rtt_buffered_us);
    measure_throughput(&o, payload, &f);
    report(&o, &f);
    bool lost = f.received < o.messages || f.dropped > 0 || f.slow_consumer_events > 0;
    if (lost)
        fprintf(stderr,
                "mbx-nats-peer: %lld of %ld messages missing (%lld dropped as slow consumer): "
                "the throughput figure is not a fair one\n",
                (long long)(o.messages - f.received), o.messages, (long long)f.dropped);
    free(payload);
    nats_CloseAndWait(5000);
    return lost ? 3 : 0;
}
