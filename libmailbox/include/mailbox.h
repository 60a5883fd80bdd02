/*
 * mailbox.h: the public API of libmailbox.
 *
 * A client connects to a namespace served by a running mailboxd, gets a mailbox of its
 * own under a unique name, and exchanges small JSON messages with the other clients of
 * the namespace through shared memory. The broker is not on the data path: mbx_send()
 * copies the message straight into the recipient's mailbox.
 *
 * Conventions used throughout:
 * - Every function that can fail returns an mbx_err; MBX_OK (0) is success.
 * - Timeouts are in milliseconds: 0 means "do not wait", a negative value means "wait
 *   without limit" (the call still returns when the namespace shuts down).
 * - Strings passed in are borrowed for the duration of the call only.
 * - Functions that take no client (mbx_connect, mbx_inspect, mbx_strerror, ...) may be
 *   called from any thread at any time. What may run concurrently on one client is
 *   stated at each function. A client belongs to the process that connected it: in a
 *   forked child every call on it returns MBX_EINVAL, and mbx_close() only frees the
 *   child's copy (the parent keeps its name and its messages).
 */
#ifndef MAILBOX_H
#define MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MBX_STATIC)
#define MBX_API
#elif defined(MBX_BUILDING_LIBRARY)
#define MBX_API __attribute__((visibility("default")))
#else
#define MBX_API
#endif

#define MBX_VERSION_MAJOR 0
#define MBX_VERSION_MINOR 1
#define MBX_VERSION_PATCH 0
#define MBX_VERSION_STRING "0.1.0"

/* Longest namespace or client name, in bytes, without the terminating NUL. */
#define MBX_NAME_MAX 63

/* Longest topic or topic pattern, in bytes, without the terminating NUL. */
#define MBX_TOPIC_MAX 127

/* Longest linger a client may ask for: one day, in milliseconds. */
#define MBX_LINGER_MAX_MS 86400000

/*
 * ABI: the structures a caller allocates (options, results, info) end in a reserved
 * tail, so that later versions add fields there without changing their size; options
 * are filled by their _init function (which zeroes the tail). Structures the library
 * hands to a visitor only ever grow at their end. Symbols carry the version node
 * MAILBOX_0 (libmailbox.map).
 */

/* Every error the library reports. The numeric values are stable. */
typedef enum mbx_err {
    MBX_OK = 0,
    MBX_ENOBROKER = 1,    /* no broker serves the namespace */
    MBX_ENAMETAKEN = 2,   /* another live client already has that name */
    MBX_ENORECIPIENT = 3, /* no client of that name is connected */
    MBX_EFULL = 4,        /* recipient's mailbox stayed full until the timeout */
    MBX_ETOOLARGE = 5,    /* message longer than the namespace's limit */
    MBX_EINVALJSON = 6,   /* message is not one valid UTF-8 JSON value */
    MBX_ETIMEDOUT = 7,    /* nothing arrived before the timeout */
    MBX_ESHUTDOWN = 8,    /* the namespace is shutting down */
    MBX_EPERM = 9,        /* permission denied */
    MBX_EVERSION = 10,    /* segment or broker of another layout/protocol version */
    MBX_ECORRUPT = 11,    /* shared memory failed validation */
    MBX_EINVAL = 12,      /* invalid argument (bad name, bad option value, misuse) */
    MBX_ENOSLOTS = 13,    /* every slot of the namespace is taken */
    MBX_ENOMEM = 14,      /* out of memory */
    MBX_EGONE = 15,       /* recipient went away while the sender waited */
    MBX_EEXIST = 16,      /* namespace already exists (broker side) */
    MBX_ESYSTEM = 17,     /* unexpected operating-system error */
    MBX_EINTR = 18,       /* a receive was interrupted by mbx_interrupt() */
    MBX_ESIGNAL = 19,     /* a signal arrived while the call slept (option `signals`) */
    MBX_ERR_COUNT_ = 20   /* number of codes; not an error */
} mbx_err;

/* A short English message for an error code; never NULL, never to be freed. */
MBX_API const char *mbx_strerror(int err);

/* The operating system's own error code (errno on POSIX, GetLastError() on Windows)
 * behind the last MBX_ESYSTEM a call returned to the calling thread; 0 when there was
 * none. Any thread. */
MBX_API int mbx_os_error(void);

/* The library's version string ("0.1.0"). */
MBX_API const char *mbx_version(void);

/*
 * The namespace a program uses when none is given: $MBX_NAMESPACE when set and not empty,
 * else "default". The returned string is static or from the environment; do not free it.
 */
MBX_API const char *mbx_default_namespace(void);

/* MBX_OK when name is a valid namespace or client name, MBX_EINVAL otherwise. */
MBX_API mbx_err mbx_check_name(const char *name);

/* ---------------------------------------------------------------------------------- */
/* Connecting                                                                           */

typedef struct mbx_client mbx_client;

typedef struct mbx_connect_options {
    const char *namespace_name; /* NULL: mbx_default_namespace() */
    const char *client_name;    /* NULL or "": the broker assigns a unique name */
    int timeout_ms;             /* bound on talking to the broker (connecting and
                                   registering in mbx_connect, giving the mailbox back in
                                   mbx_close), even when it is stopped; default 5000 */
    int linger_ms;              /* keep the mailbox and its messages this long after the
                                   client goes (closes, exits or is killed), for a new
                                   client of the same name; 0 (default) to 86400000 */
    int group;                  /* 1: join the group serving client_name (several clients
                                   may; each message or request to the name goes to one
                                   member, the one with the fewest waiting); needs a
                                   name, no linger. 0 (default): take the name alone */
    int send_only;              /* 1: a client that only sends and publishes: it takes no
                                   slot (any number may run at once), client_name only
                                   labels its messages (not taken, not unique; NULL:
                                   "send.<pid>.<n>"), and receiving, requests, topics'
                                   subscriptions and the wake handle are refused
                                   (MBX_EINVAL); its sends count in the namespace's
                                   totals. No linger, no group */
    int signals;                /* 1: a signal handled while a call of this client
                                   sleeps ends that call with MBX_ESIGNAL (POSIX; see
                                   "Signals" in docs/api.md). For programs whose handlers
                                   only set a flag that the caller must look at, such as
                                   language runtimes. 0 (default): the call sleeps on */
    int monitor;                /* 1: a monitor (`mbx monitor`): the mailbox gets a copy
                                   of every message sent in the namespace, as it is sent
                                   (mbx_message_monitored), and nothing else; copies it
                                   cannot take in time are missed and counted, never
                                   waited for. The namespace's owner only (else
                                   MBX_EPERM; Windows: whoever its mode admits); at
                                   most 4 at once (else MBX_ENOSLOTS); no group,
                                   linger, send_only or node. 0 (default) */
    const char *node;           /* for mailbox-bridge: NULL (default), or the node (host)
                                   that really serves client_name: the mailbox stands
                                   for that remote name here and `mbx list` shows it as
                                   remote. Needs a name; a group member (group 1) stands
                                   for the members on other nodes, and a send to the
                                   group goes to it only when no local member is there */
    uint64_t reserved_[6];      /* room for fields to come (ABI): leave zero */
} mbx_connect_options;

/* Fills *opts with the defaults. Call it first so later fields keep their defaults. */
MBX_API void mbx_connect_options_init(mbx_connect_options *opts);

/*
 * Connects to a namespace and takes a mailbox. On success *out is a new client handle,
 * owned by the caller until mbx_close(). opts may be NULL for the defaults.
 * Errors: MBX_ENOBROKER, MBX_ENAMETAKEN, MBX_ENOSLOTS, MBX_EPERM, MBX_EVERSION,
 * MBX_ECORRUPT, MBX_ESHUTDOWN, MBX_EINVAL (bad name), MBX_ETIMEDOUT, MBX_ENOMEM.
 */
MBX_API mbx_err mbx_connect(const mbx_connect_options *opts, mbx_client **out);

/*
 * Gives the mailbox back and frees the handle. Messages still waiting in the mailbox are
 * discarded (and counted by the broker). The name is free again when this returns if
 * the broker answered within the client's timeout_ms; a broker that is gone or stopped
 * frees it later (when its successor adopts the namespace, this process may take the
 * name back by connecting again). No other call may be running on the handle.
 * NULL is accepted and ignored.
 */
MBX_API void mbx_close(mbx_client *client);

/* The client's own name (assigned or given); valid until mbx_close(). */
MBX_API const char *mbx_client_name(const mbx_client *client);

/* The namespace's limit on one message, in bytes. */
MBX_API size_t mbx_max_message(const mbx_client *client);

/* ---------------------------------------------------------------------------------- */
/* Sending                                                                              */

/*
 * Sends one JSON value (json[0..len), UTF-8, no NUL byte) to the client named `to`.
 * The text is validated before anything enters shared memory; the recipient receives it
 * in compact form (insignificant white space removed). len is limited to
 * mbx_max_message(). If the mailbox is full the call waits up to timeout_ms for space,
 * then fails with MBX_EFULL; a message is never dropped or overwritten.
 * Returns MBX_OK once the message is in the recipient's mailbox.
 * Errors: MBX_EINVALJSON, MBX_ETOOLARGE, MBX_ENORECIPIENT, MBX_EFULL, MBX_EGONE,
 * MBX_ESHUTDOWN, MBX_ECORRUPT, MBX_EINVAL.
 * Thread safety: any number of threads may send on one client at once.
 */
MBX_API mbx_err mbx_send(mbx_client *client, const char *to, const char *json, size_t len,
                         int timeout_ms);

/* Options of one send. Call mbx_send_options_init() first for the defaults. */
typedef struct mbx_send_options {
    int timeout_ms;        /* how long to wait for space in a full mailbox; default 5000 */
    int trusted;           /* 0 (default): validate. 1: the caller vouches that the text is one
                              valid JSON value in UTF-8, compact (no white space outside strings);
                              validation and compaction are skipped (only the size and the absence
                              of NUL bytes are checked). Text that breaks the promise is refused
                              by its recipient (MBX_ECORRUPT); it cannot harm the namespace. */
    int wait_ms;           /* when no client of that name is there yet, wait up to this long for
                              one to appear (as mbx_wait_for), then send; default 0: fail at once
                              with MBX_ENORECIPIENT */
    int reserved32_;       /* leave zero */
    const char *node;      /* for mailbox-bridge: NULL (default), or the node the message
                              came from; the recipient sees it (mbx_message_node) */
    const char *from;      /* with node only: the sender's name on that node (default: the
                              client's own); replies still come back to this client */
    uint64_t once;         /* with node only, for mailbox-bridge's durable mode: 0 (default),
                              or a number that grows with every message of one stream to
                              this recipient. The message is put in only if `once` is above
                              the highest the recipient's mailbox took (checked and recorded
                              with the message, under its lock); else MBX_OK and nothing is
                              put in: a delivery repeated after a crash is not duplicated */
    uint64_t reserved_[5]; /* room for fields to come (ABI): leave zero */
} mbx_send_options;

MBX_API void mbx_send_options_init(mbx_send_options *opts);

/* mbx_send() with options (opts NULL: the defaults). Same errors and thread safety. */
MBX_API mbx_err mbx_send_ex(mbx_client *client, const char *to, const char *json, size_t len,
                            const mbx_send_options *opts);

/* mbx_request_send() with options (opts NULL: the defaults; wait_ms, node and from as
 * for mbx_send_ex). Same errors and thread safety. */
MBX_API mbx_err mbx_request_send_ex(mbx_client *client, const char *to, const char *json,
                                    size_t len, const mbx_send_options *opts, uint64_t *id);

/* ---------------------------------------------------------------------------------- */
/* Waiting for a peer                                                                   */

/*
 * Waits until a send to client_name in the namespace would be accepted (a client of that
 * name is connected, or its mailbox lingers), up to timeout_ms (negative: no limit).
 * Also waits for the broker itself when none runs yet, so that a broker and its clients
 * may start in any order. It sleeps on what the broker signals at every change of its
 * directory (and, with no broker, on the appearance of its endpoint): no polling.
 * namespace_name NULL: the default. Needs no mailbox.
 * Returns MBX_OK, or MBX_ETIMEDOUT; MBX_EINVAL for a bad name; MBX_EPERM when the
 * namespace does not admit the caller; MBX_EVERSION, MBX_ECORRUPT.
 * Thread safety: any thread, any time.
 */
MBX_API mbx_err mbx_wait_for(const char *namespace_name, const char *client_name, int timeout_ms);

/* ---------------------------------------------------------------------------------- */
/* Receiving                                                                            */

/* A received message and its envelope. Reusable across mbx_recv() calls. */
typedef struct mbx_message mbx_message;

/* A new empty message, or NULL when out of memory. Free it with mbx_message_free(). */
MBX_API mbx_message *mbx_message_new(void);
MBX_API void mbx_message_free(mbx_message *msg);

/*
 * Takes the oldest message from the client's own mailbox into msg, waiting up to
 * timeout_ms for one. msg's previous contents are replaced.
 * Errors: MBX_ETIMEDOUT, MBX_ESHUTDOWN, MBX_ECORRUPT, MBX_EINVAL, MBX_ENOMEM, MBX_EINTR
 * (mbx_interrupt).
 * Thread safety: one thread at a time may receive on a client (a second concurrent call
 * fails with MBX_EINVAL); receiving may run concurrently with sending.
 */
MBX_API mbx_err mbx_recv(mbx_client *client, mbx_message *msg, int timeout_ms);

/*
 * Receives the oldest message into msg like mbx_recv(), but leaves it in the mailbox:
 * the next mbx_peek() or mbx_recv() returns the same message again, until mbx_ack()
 * removes it. For consumers that must not lose a message they fail to handle or to
 * write out (`mbx recv` acknowledges a message only once it is written). A message that
 * cannot be read (MBX_ECORRUPT) is removed at once, so that it cannot block the mailbox.
 * Errors and thread safety as mbx_recv().
 */
MBX_API mbx_err mbx_peek(mbx_client *client, mbx_message *msg, int timeout_ms);

/*
 * Removes the message that mbx_peek() put into msg from the mailbox. Errors: MBX_EINVAL
 * when msg does not hold the oldest message any more (it was acknowledged or received
 * already, or msg did not come from mbx_peek() on this client), MBX_ESHUTDOWN when the
 * mailbox is no longer this client's. Thread safety as mbx_recv().
 */
MBX_API mbx_err mbx_ack(mbx_client *client, const mbx_message *msg);

/*
 * Receives into msg the message that follows prev in the mailbox (prev: a message that
 * mbx_peek or mbx_peek_after put there, on this client), leaving both in place, so that a
 * consumer holds several messages at once, in order, and removes each with mbx_ack once
 * done with it, oldest first (mbx_ack removes only the oldest). For forwarders that must
 * not lose a message they have not passed on yet, without one round trip per message
 * (mailbox-bridge's durable mode). It does not wait: MBX_ETIMEDOUT when nothing follows
 * prev yet (the wake handle turns readable when something arrives), or when what follows
 * is a reply or a request given back, which only mbx_peek hands out (acknowledge what you
 * hold, then mbx_peek). msg may be prev itself. A corrupt message is MBX_ECORRUPT and
 * stays until a receive at the head of the mailbox removes it.
 * Errors: MBX_EINVAL (prev is not a peeked message of this client, or the message after
 * it was removed already), MBX_ESHUTDOWN, MBX_ECORRUPT, MBX_ENOMEM. Thread safety as
 * mbx_recv.
 */
MBX_API mbx_err mbx_peek_after(mbx_client *client, const mbx_message *prev, mbx_message *msg);

/* ---------------------------------------------------------------------------------- */
/* Request and reply                                                                    */

/* What a received message is. */
typedef enum mbx_kind {
    MBX_KIND_PLAIN = 0,      /* sent with mbx_send */
    MBX_KIND_REQUEST = 1,    /* sent with mbx_request or mbx_request_send: answer it */
    MBX_KIND_REPLY = 2,      /* the answer to one of our requests */
    MBX_KIND_PUBLICATION = 3 /* published on a topic we subscribe to (mbx_message_topic) */
} mbx_kind;

MBX_API mbx_kind mbx_message_kind(const mbx_message *msg);
/* A request's id (requests), or the id of the request answered (replies); 0 otherwise. */
MBX_API uint64_t mbx_message_correlation(const mbx_message *msg);

/*
 * Sends json to `to` as a request and waits up to timeout_ms for its reply, into reply.
 * Messages that arrive meanwhile stay in the mailbox, in order, for the next mbx_recv.
 * Errors: as mbx_send (MBX_ENORECIPIENT at once when nobody serves `to`); MBX_ETIMEDOUT;
 * MBX_EGONE when the responder dies, closes or leaves with the request unanswered (within
 * a fraction of a second, not at the end of the timeout). A member of a service group that
 * leaves before taking the request gives it back, and it goes to another member with no
 * error: MBX_EGONE means a member took it and left without answering.
 * A request is answered once, by the client it went to: request ids are unique across
 * every run of a name (they start at a random number per connection), and a reply that
 * answers no request of this connection that is still waiting (a reply meant for an
 * earlier run of the name, a second reply, a reply to a request given up, a reply from
 * another client) is dropped and counted (mbx_client_info.late_replies), never delivered.
 * Thread safety: it receives: as mbx_recv (one receiving thread per client).
 */
MBX_API mbx_err mbx_request(mbx_client *client, const char *to, const char *json, size_t len,
                            mbx_message *reply, int timeout_ms);

/*
 * The asynchronous form, for event loops: sends a request, sets *id, and returns; its
 * reply arrives through mbx_recv (kind MBX_KIND_REPLY, correlation *id) or
 * mbx_recv_reply. The request waits for its reply until the reply is received or it is
 * given up with mbx_request_cancel (the client keeps a few dozen bytes per waiting
 * request). Errors: as mbx_send; MBX_ENOMEM. Thread safety: as mbx_send.
 */
MBX_API mbx_err mbx_request_send(mbx_client *client, const char *to, const char *json, size_t len,
                                 int timeout_ms, uint64_t *id);

/*
 * Gives up request id (from mbx_request_send): its reply, if one comes, is dropped and
 * counted (mbx_client_info.late_replies). Errors: MBX_EINVAL when id is not a request of
 * this client that waits for its reply. Thread safety: as mbx_send.
 */
MBX_API mbx_err mbx_request_cancel(mbx_client *client, uint64_t id);

/*
 * Waits up to timeout_ms (0: only looks) for the reply to request id (from
 * mbx_request_send), taking it wherever it is in the mailbox and leaving every other
 * message in place, as mbx_request does. A timeout does not give the request up: call
 * again (an event loop calls it with 0 each time the wake handle is readable; the handle
 * turns readable again for anything that arrives after what this call looked at).
 * Errors: MBX_ETIMEDOUT; MBX_EINVAL (not a request of this client that waits for its
 * reply: never sent, answered already, or given up); MBX_EGONE (the responder took it and
 * left without answering: the request is over); the error of sending it again when a
 * leaving group member gave it back (MBX_ENORECIPIENT when no member is left); and as
 * mbx_recv. Thread safety: it receives: as mbx_recv.
 */
MBX_API mbx_err mbx_recv_reply(mbx_client *client, uint64_t id, mbx_message *reply, int timeout_ms);

/*
 * Answers a request (a message of kind MBX_KIND_REQUEST) with json: it goes straight back
 * to the requester, correlated, whatever else the requester is waiting for. A request is
 * answered once: a second mbx_reply on the same message returns MBX_EINVAL and sends
 * nothing (a reply that could not be sent, MBX_EFULL or MBX_ETOOLARGE say, may be tried
 * again).
 * Errors: as mbx_send; MBX_EGONE when the requester is gone (the reply is discarded and
 * counted in mbx_namespace_info.discarded); MBX_EINVAL when request is not a request, or
 * was answered already. Thread safety: as mbx_send.
 */
MBX_API mbx_err mbx_reply(mbx_client *client, const mbx_message *request, const char *json,
                          size_t len, int timeout_ms);

/* mbx_reply() with options (timeout_ms, trusted and node as for mbx_send_ex; from and
 * wait_ms are not used). Same errors and thread safety. */
MBX_API mbx_err mbx_reply_ex(mbx_client *client, const mbx_message *request, const char *json,
                             size_t len, const mbx_send_options *opts);

/*
 * Ends a request with an error instead of an answer (for mailbox-bridge, telling what
 * happened on another node: MBX_ENORECIPIENT, MBX_EGONE, ...): the requester's
 * mbx_request or mbx_recv_reply returns `error`; a requester that takes its replies with
 * mbx_recv gets a reply whose mbx_message_error() is `error`, with the body
 * {"error":"<mbx_strerror(error)>","code":<error>}. Only errors that tell of the far side
 * are taken: MBX_ENORECIPIENT, MBX_EGONE, MBX_EFULL, MBX_ETOOLARGE, MBX_EINVALJSON,
 * MBX_EPERM, MBX_ENOBROKER (any other: MBX_EINVAL; a requester reads any other code a
 * member wrote as MBX_EGONE). Errors and thread safety as mbx_reply.
 */
MBX_API mbx_err mbx_reply_error(mbx_client *client, const mbx_message *request, mbx_err error,
                                int timeout_ms);

/* ---------------------------------------------------------------------------------- */
/* Topics: publish and subscribe                                                         */

/*
 * A topic is dot-separated tokens of [A-Za-z0-9_-] ("sensors.kitchen.temp"), at most
 * MBX_TOPIC_MAX bytes. A pattern may also use '*' for exactly one token and, last, '>'
 * for one or more ("sensors.*.temp", "sensors.>"), as NATS subjects do. Topics that
 * begin with "$mbx." are the broker's own: clients cannot publish them, a pattern that
 * names them ("$mbx.client.*") receives them, and a pattern that begins with a wildcard
 * does not. The broker publishes:
 *   $mbx.client.up    {"name":N,"pid":P}                 a client connected
 *   $mbx.client.down  {"name":N,"pid":P,"reason":R}      a name stopped taking messages;
 *                     R is "closed", "died", "evicted" or "linger expired"
 */

/* What happens to a subscriber whose mailbox is full when a publication comes. */
typedef enum mbx_sub_policy {
    MBX_SUB_DROP = 0, /* it misses that one (counted; its next publication says how many) */
    MBX_SUB_BLOCK = 1 /* the publisher waits for space up to its timeout, then gets MBX_EFULL */
} mbx_sub_policy;

typedef struct mbx_subscribe_options {
    int policy;            /* mbx_sub_policy; default MBX_SUB_DROP */
    uint64_t reserved_[8]; /* room for fields to come (ABI): leave zero */
} mbx_subscribe_options;

MBX_API void mbx_subscribe_options_init(mbx_subscribe_options *opts);

/* MBX_OK when topic is a topic a client may publish on (not a "$mbx." one), else
 * MBX_EINVAL. */
MBX_API mbx_err mbx_check_topic(const char *topic);
/* MBX_OK when pattern is a valid subscription pattern, else MBX_EINVAL. */
MBX_API mbx_err mbx_check_pattern(const char *pattern);
/* 1 when topic (or a name: the same dotted tokens) matches pattern, else 0 (also for an
 * invalid pattern or topic). */
MBX_API int mbx_pattern_match(const char *pattern, const char *topic);

/*
 * Subscribes the client to the topics `pattern` matches (opts NULL: the defaults).
 * Subscribing again to the same pattern changes its policy. The namespace's retained
 * message of every matching topic is put into the client's mailbox at once. A client
 * holds at most MBX_SUBSCRIPTIONS_PER_CLIENT subscriptions; they end with the client
 * (mbx_close, its exit or death) and live in the namespace's segment, so they outlive a
 * broker restart.
 * Errors: MBX_EINVAL (bad pattern or policy), MBX_ENOSLOTS (the namespace's subscription
 * table, or the client's share of it, is full), MBX_ETIMEDOUT (the table stayed locked
 * for the client's timeout), MBX_ESHUTDOWN, MBX_ECORRUPT.
 * Thread safety: any thread; subscriptions of one client are changed one at a time.
 */
MBX_API mbx_err mbx_subscribe(mbx_client *client, const char *pattern,
                              const mbx_subscribe_options *opts);

/* Ends the subscription to exactly `pattern`: from its return on, no message that only
 * that pattern selected is handed out, even one already in the mailbox. Errors: as
 * mbx_subscribe; MBX_EINVAL when the client has no such subscription. */
MBX_API mbx_err mbx_unsubscribe(mbx_client *client, const char *pattern);

/* The most subscriptions one client may hold. */
#define MBX_SUBSCRIPTIONS_PER_CLIENT 64

/* What one publication did (filled when mbx_publish_options.result is set). */
typedef struct mbx_publish_result {
    uint32_t delivered;          /* subscribers that received it */
    uint32_t dropped;            /* drop-policy subscribers whose mailbox was full */
    char full[MBX_NAME_MAX + 1]; /* MBX_EFULL: the block-policy subscriber that stayed
                                    full ("" otherwise) */
    uint64_t reserved_[8];       /* room for fields to come (ABI): leave zero */
} mbx_publish_result;

typedef struct mbx_publish_options {
    int timeout_ms; /* how long a block-policy subscriber's full mailbox may hold the
                       publisher up (one deadline for the whole publication); default 5000 */
    int trusted;    /* as mbx_send_options.trusted */
    int retain;     /* 1: the namespace keeps it as the topic's retained message and hands
                       it to every later matching subscription (a retained null clears the
                       topic's); the table is bounded, see docs/api.md */
    mbx_publish_result *result; /* may be NULL */
    const char *node;           /* as mbx_send_options.node: mailbox-bridge's republishing */
    const char *from;           /* as mbx_send_options.from */
    uint64_t reserved_[6];      /* room for fields to come (ABI): leave zero */
} mbx_publish_options;

MBX_API void mbx_publish_options_init(mbx_publish_options *opts);

/*
 * Publishes json on topic: one copy goes into the mailbox of every client with a matching
 * subscription (one copy per client, however many of its patterns match). Drop-policy
 * subscribers are served first and never wait; then block-policy ones, each waiting for
 * space within the one deadline. Having no subscriber is not an error.
 * Errors: MBX_EINVAL (bad topic, or a "$mbx." one), MBX_EINVALJSON, MBX_ETOOLARGE (the
 * topic and the body together exceed the namespace's message size), MBX_EFULL (a
 * block-policy subscriber stayed full: result->full names it; all others received it),
 * MBX_ETIMEDOUT (retain: the table stayed locked), MBX_ESHUTDOWN, MBX_ECORRUPT.
 * Thread safety: as mbx_send.
 */
MBX_API mbx_err mbx_publish(mbx_client *client, const char *topic, const char *json, size_t len,
                            const mbx_publish_options *opts);

/* ---------------------------------------------------------------------------------- */
/* Event loops                                                                          */

/* What an event loop waits on: a file descriptor on POSIX, a HANDLE on Windows. */
#ifdef _WIN32
typedef void *mbx_handle;
#else
typedef int mbx_handle;
#endif

/*
 * The client's wake handle, for epoll, poll, select, libuv, GLib, asyncio (POSIX) or
 * WaitForMultipleObjects and its kin (Windows). Contract:
 * - it is readable (signalled) while anything arrived since the client last looked, and
 *   on namespace shutdown or eviction (the next receive then says which). A receive
 *   looks at the whole mailbox when it ends with MBX_ETIMEDOUT (mbx_recv, mbx_peek,
 *   mbx_recv_batch: the mailbox is empty; mbx_recv_reply: no reply among what waits),
 *   and up to the reply when mbx_recv_reply returns one: after such a receive the handle
 *   is quiet until something new arrives, even if messages the caller did not take stay
 *   in the mailbox;
 * - waiting on it, then receiving with timeout 0 until MBX_ETIMEDOUT, never misses a
 *   message and never spins, edge- or level-triggered; an event loop that waits for a
 *   reply with mbx_recv_reply(id, 0) each time the handle is readable hears of its reply
 *   whatever else came first;
 * - it works level- and edge-triggered (epoll), with poll and select;
 * - it belongs to the client: do not read from it, write to it or close it; mbx_close()
 *   closes it. It is close-on-exec; a forked child gets MBX_EINVAL for it, as for every
 *   call on a client it did not connect;
 * - a send costs nothing more unless the receiver waits on its handle (a word in shared
 *   memory says so), and a sender holds no descriptor per recipient.
 * The first call makes it; later calls return the same one. Errors: MBX_EINVAL (also
 * while another thread receives on the client), MBX_ESYSTEM. Thread safety: as
 * mbx_recv().
 */
MBX_API mbx_err mbx_wait_handle(mbx_client *client, mbx_handle *out);

/* The longest spin mbx_busy_poll() accepts: 10 ms. */
#define MBX_BUSY_POLL_MAX_US 10000

/*
 * Busy polling, for an event loop that wants the latency of a blocking receive: watches
 * the mailbox for up to max_us microseconds without a system call, then arms the wake
 * handle. A sender that publishes while the client watches skips the handle's system
 * call, and the client catches the message without the kernel's wake-up. Use it after
 * taking everything (mbx_recv with timeout 0 said MBX_ETIMEDOUT) and before waiting on
 * the handle:
 *     while (mbx_recv(c, m, 0) == MBX_OK) handle(m);
 *     if (mbx_busy_poll(c, 30) == MBX_OK) continue;    (something came: take it)
 *     epoll_wait(...);                                  (the handle is armed)
 * It spins the CPU for up to max_us each time the mailbox runs empty: worth it when
 * replies follow requests within microseconds, wasteful on an idle loop. When the last
 * message's sender ran on this CPU it yields between looks instead (twice at most: the
 * system may give the CPU back only after a time slice, and the call then returns that
 * much later than max_us). Returns MBX_OK as soon as a receive has something to say
 * (a message, a shutdown, an eviction, an interrupt), MBX_ETIMEDOUT when max_us passed
 * with nothing (the handle is then armed, as after a receive that found the mailbox
 * empty). Errors: MBX_EINVAL (max_us outside 0..MBX_BUSY_POLL_MAX_US, or another thread
 * receives on the client meanwhile). Thread safety: as mbx_recv(). Works without a wake
 * handle too (it then only watches).
 */
MBX_API mbx_err mbx_busy_poll(mbx_client *client, int max_us);

/*
 * Interrupts a receive blocked on the client (mbx_recv, mbx_peek, mbx_recv_batch), or
 * the next one to start when none is blocked: it returns MBX_EINTR at once, without
 * taking a message. One interrupt ends one receive; the client stays fully usable.
 * Thread safety: any thread, and async-signal-safe on POSIX (it stores a flag and wakes
 * the receiver: no lock, no allocation). Errors: MBX_EINVAL when client is NULL.
 */
MBX_API mbx_err mbx_interrupt(mbx_client *client);

/*
 * Takes up to n messages into msgs[0..n) (each from mbx_message_new()): waits up to
 * timeout_ms for the first, then takes those already waiting without waiting again.
 * *got is how many were taken. Returns MBX_OK when at least one was taken, else as
 * mbx_recv(). A corrupt message met after the first ends the batch early (it is reported
 * by the next call). Thread safety as mbx_recv().
 */
MBX_API mbx_err mbx_recv_batch(mbx_client *client, mbx_message **msgs, size_t n, size_t *got,
                               int timeout_ms);

/* The message body: compact JSON text, NUL-terminated; *len (if not NULL) its length.
 * Owned by msg; valid until msg is reused or freed. */
MBX_API const char *mbx_message_body(const mbx_message *msg, size_t *len);
/* The sender's and recipient's names. Owned by msg. */
MBX_API const char *mbx_message_from(const mbx_message *msg);
MBX_API const char *mbx_message_to(const mbx_message *msg);
/* The sender's sequence number: 1 for its first message, then +1 for each send. */
MBX_API uint64_t mbx_message_seq(const mbx_message *msg);
/* When the message was sent: microseconds since the Unix epoch. */
MBX_API int64_t mbx_message_ts_us(const mbx_message *msg);
/* The topic a publication came on; NULL for a message sent to the client directly. */
MBX_API const char *mbx_message_topic(const mbx_message *msg);
/* For a publication: how many publications this client missed (drop policy, full
 * mailbox) just before this one; for a monitor's copy: how many copies the monitor
 * missed just before this one; 0 otherwise. */
MBX_API uint64_t mbx_message_missed(const mbx_message *msg);
/* The node (host) a message came from through mailbox-bridge; NULL for one sent here. */
MBX_API const char *mbx_message_node(const mbx_message *msg);
/* For a publication: 1 when it was published retained (mbx_publish_options.retain), or
 * is the topic's retained message handed to a new subscription; else 0. */
MBX_API int mbx_message_retained(const mbx_message *msg);
/* For a reply: the error its request ended with on the far side (mbx_reply_error), or
 * MBX_OK for an answer. */
MBX_API mbx_err mbx_message_error(const mbx_message *msg);
/* 1 for what a monitor receives (mbx_connect_options.monitor): a copy of a message sent
 * in the namespace. Its kind, correlation, topic, node and error are the original's;
 * mbx_message_from is its sender, mbx_message_to the name it was sent to (a group's name
 * for a group; "" for a publication, and for a reply whose requester has gone);
 * mbx_message_missed the copies this monitor missed just before it; its seq is 0. A
 * copy cannot be replied to. 0 for anything else. */
MBX_API int mbx_message_monitored(const mbx_message *msg);

/* All of a received message's fields at once (for bindings: one call instead of ten).
 * The pointers are owned by the message, valid until it is reused or freed. */
typedef struct mbx_message_fields {
    const char *body; /* compact JSON, NUL-terminated */
    size_t len;
    const char *from;
    const char *to;
    uint64_t seq;
    int64_t ts_us;
    int kind; /* mbx_kind */
    uint64_t correlation;
    const char *topic; /* NULL unless a publication */
    uint64_t missed;
    const char *node;      /* NULL unless it came through mailbox-bridge */
    int retained;          /* mbx_message_retained() */
    int monitored;         /* mbx_message_monitored() */
    uint64_t reserved_[6]; /* room for fields to come (ABI): leave zero */
} mbx_message_fields;

MBX_API void mbx_message_fields_get(const mbx_message *msg, mbx_message_fields *out);

/*
 * The envelope as one line of compact JSON ({"from","to","seq","ts","body"}, described by
 * schemas/envelope.schema.json). Returns a new string the caller frees with mbx_free(),
 * or NULL when out of memory.
 */
MBX_API char *mbx_message_envelope_json(const mbx_message *msg);

/* Frees memory the library returned. */
MBX_API void mbx_free(void *ptr);

/* ---------------------------------------------------------------------------------- */
/* Observing a namespace (read-only; needs no mailbox)                                   */

typedef struct mbx_namespace_info {
    char namespace_name[MBX_NAME_MAX + 1];
    int64_t broker_pid;
    int64_t uptime_s; /* seconds since the broker created or adopted the segment */
    uint64_t epoch;   /* how many times the namespace was adopted by a new broker */
    uint32_t slots;   /* mailboxes in the namespace */
    uint32_t depth;   /* messages one mailbox holds at most (fewer large ones: mailbox_bytes) */
    uint32_t max_message;
    uint32_t clients; /* slots in use */
    uint64_t segment_bytes;
    uint64_t discarded;         /* messages discarded because their recipient went away */
    uint32_t max_subscriptions; /* size of the subscription table */
    uint32_t subscriptions;     /* subscriptions held by live clients */
    uint32_t max_retained;      /* size of the retained-message table */
    uint32_t retained;          /* topics with a retained message */
    /* Totals since the namespace was created, gone clients included: */
    uint64_t total_sent;         /* messages sent */
    uint64_t total_received;     /* messages taken from their mailbox */
    uint64_t total_refused_full; /* sends refused as the recipient's mailbox was full */
    uint64_t clients_seen;       /* clients that connected */
    uint32_t mailbox_bytes;      /* bytes of each mailbox's ring of messages */
    uint32_t reserved32_;
    uint64_t reserved_[7]; /* room for fields to come (ABI): leave zero */
} mbx_namespace_info;

/* Filled by the library and passed by pointer: fields to come are only appended (ABI). */
typedef struct mbx_client_info {
    char name[MBX_NAME_MAX + 1];
    uint32_t slot;
    int64_t pid;
    uint64_t waiting;            /* messages in its mailbox */
    uint64_t sent;               /* messages it sent */
    uint64_t received;           /* messages it took from its mailbox */
    uint64_t refused_full;       /* sends to it that failed because its mailbox was full */
    int lingering;               /* 1: its client is gone and the mailbox waits for a new one
                                    of the same name (pid is then 0) */
    uint64_t late_replies;       /* replies to requests it had given up: dropped */
    int group;                   /* 1: a member of the group serving its name */
    uint32_t subscriptions;      /* topic patterns it subscribes to */
    uint64_t dropped;            /* publications it missed because its mailbox was full */
    uint32_t senders_waiting;    /* senders asleep until its full mailbox has room (a hint:
                                    read from shared memory, not checked) */
    int remote;                  /* 1: a name served on another node, through the bridge
                                    that holds this mailbox (pid is the bridge's) */
    char node[MBX_NAME_MAX + 1]; /* remote: the node that serves it; else "" */
} mbx_client_info;

/* One subscription, as mbx_inspect_subscriptions() reports it. */
typedef struct mbx_subscription_info {
    char client[MBX_NAME_MAX + 1];
    uint32_t slot;
    char pattern[MBX_TOPIC_MAX + 1];
    int policy; /* mbx_sub_policy */
} mbx_subscription_info;

/* Called once per connected client; return non-zero to stop early. */
typedef int (*mbx_client_visitor)(const mbx_client_info *info, void *arg);

/*
 * Reads a namespace's state without connecting. namespace_name NULL: the default.
 * Fills *info, then calls visit (if not NULL) for each connected client.
 * Errors: MBX_ENOBROKER, MBX_EPERM, MBX_EVERSION, MBX_ECORRUPT, MBX_EINVAL.
 * On MBX_ENOBROKER with a segment left behind by a broker that is gone, info->broker_pid
 * names that broker (0 when there is no segment at all).
 */
MBX_API mbx_err mbx_inspect(const char *namespace_name, mbx_namespace_info *info,
                            mbx_client_visitor visit, void *arg);

/* Called once per subscription; return non-zero to stop early. */
typedef int (*mbx_subscription_visitor)(const mbx_subscription_info *info, void *arg);

/* Calls visit for each subscription of a live client. Errors: as mbx_inspect. */
MBX_API mbx_err mbx_inspect_subscriptions(const char *namespace_name,
                                          mbx_subscription_visitor visit, void *arg);

/* ---------------------------------------------------------------------------------- */
/* The machine's namespaces                                                             */

enum mbx_namespace_state {
    MBX_NS_SERVED = 0,   /* a broker serves it */
    MBX_NS_ORPHANED = 1, /* its broker died; a keeper holds its segment, and the next
                            broker adopts it (or `mbx clean` lets it go) */
    MBX_NS_STALE = 2     /* only files a dead broker left (`mbx clean` removes them) */
};

typedef struct mbx_namespace_entry {
    char name[MBX_NAME_MAX + 1];
    int state;          /* enum mbx_namespace_state */
    int64_t broker_pid; /* served: its broker; orphaned: the broker that died; else 0 */
    uint32_t clients;   /* served: connected clients */
    char where[256];    /* the runtime directory (POSIX) or pipe folder (Windows) */
} mbx_namespace_entry;

typedef int (*mbx_namespace_visitor)(const mbx_namespace_entry *entry, void *arg);

/* Calls visit for each namespace this user's clients can reach (POSIX: found in the
 * runtime directories; Windows: by the brokers' pipes). Errors: MBX_EINVAL. */
MBX_API mbx_err mbx_namespaces(mbx_namespace_visitor visit, void *arg);

/* Where a client looks for the broker of a namespace (NULL: the default), for messages:
 * POSIX: the control sockets' paths in the runtime directories ("A or B"); Windows: the
 * broker's pipe. Writes a NUL-terminated text into out[0..cap). Errors: MBX_EINVAL (a
 * bad name, or out NULL, or cap 0). Thread safety: any thread. */
MBX_API mbx_err mbx_where(const char *namespace_name, char *out, size_t cap);

#define MBX_CLEAN_KEEPER 1u /* a keeper let the segment go */
#define MBX_CLEAN_FILES 2u  /* files the dead broker left were removed */

/*
 * Removes what a dead broker left of a namespace: its keeper (and with it the segment and
 * the messages in it) and its files; *cleaned (may be NULL) says what there was. Refused
 * while a broker serves the namespace: MBX_EEXIST. Errors: MBX_EINVAL, MBX_EPERM.
 */
MBX_API mbx_err mbx_clean(const char *namespace_name, unsigned *cleaned);

#ifdef __cplusplus
}
#endif

#endif /* MAILBOX_H */
