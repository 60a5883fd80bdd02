/*
 * list_prometheus.c: a namespace as Prometheus metrics, for node_exporter's textfile
 * collector (docs/cli.md, "mbx list"). Every metric has the label namespace; per-client
 * ones add client, slot and node (the node serving a remote name, else ""). Names are
 * checked names (A-Z a-z 0-9 . _ -): nothing in them needs escaping, but a label value is
 * escaped as the format asks all the same.
 */
#include <inttypes.h>
#include <string.h>

#include "list_prometheus.h"

static void label_value(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void ns_metric(FILE *out, const char *name, const char *type, const char *help,
                      const char *ns, uint64_t value)
{
    head(out, name, type, help);
    fprintf(out, "%s{namespace=\"", name);
    label_value(out, ns);
    fprintf(out, "\"} %" PRIu64 "\n", value);
}

typedef struct client_metric {
    const char *name, *type, *help;
    size_t offset; /* of its uint64_t in mbx_client_info */
} client_metric;

#define FIELD(f) offsetof(mbx_client_info, f)

static const client_metric client_metrics[] = {
    {"mbx_client_waiting_messages", "gauge", "Messages in the client's mailbox.", FIELD(waiting)},
    {"mbx_client_sent_total", "counter", "Messages the client sent.", FIELD(sent)},
    {"mbx_client_received_total", "counter", "Messages the client took from its mailbox.",
     FIELD(received)},
    {"mbx_client_refused_full_total", "counter",
     "Sends to the client refused because its mailbox was full.", FIELD(refused_full)},
    {"mbx_client_dropped_total", "counter",
     "Publications the client missed because its mailbox was full.", FIELD(dropped)},
    {"mbx_client_late_replies_total", "counter",
     "Replies to requests the client had given up, dropped.", FIELD(late_replies)},
};

void list_prometheus(FILE *out, const mbx_namespace_info *info, const mbx_client_info *clients,
                     size_t nclients)
{
    const char *ns = info->namespace_name;
    ns_metric(out, "mbx_up", "gauge", "1 when a broker serves the namespace.", ns, 1);
    ns_metric(out, "mbx_broker_uptime_seconds", "gauge",
              "Seconds since the broker created or adopted the namespace.", ns,
              (uint64_t)(info->uptime_s > 0 ? info->uptime_s : 0));
    ns_metric(out, "mbx_broker_epoch", "gauge",
              "How many times the namespace was adopted by a new broker.", ns, info->epoch);
    ns_metric(out, "mbx_slots", "gauge", "Mailboxes the namespace holds.", ns, info->slots);
    ns_metric(out, "mbx_clients", "gauge", "Slots in use.", ns, info->clients);
    ns_metric(out, "mbx_clients_seen_total", "counter", "Clients that connected.", ns,
              info->clients_seen);
    ns_metric(out, "mbx_messages_sent_total", "counter", "Messages sent.", ns, info->total_sent);
    ns_metric(out, "mbx_messages_received_total", "counter", "Messages taken from a mailbox.", ns,
              info->total_received);
    ns_metric(out, "mbx_messages_refused_full_total", "counter",
              "Sends refused because the recipient's mailbox was full.", ns,
              info->total_refused_full);
    ns_metric(out, "mbx_messages_discarded_total", "counter",
              "Messages discarded because their recipient went away.", ns, info->discarded);
    ns_metric(out, "mbx_subscriptions", "gauge", "Topic subscriptions of live clients.", ns,
              info->subscriptions);
    ns_metric(out, "mbx_subscriptions_max", "gauge", "Size of the subscription table.", ns,
              info->max_subscriptions);
    ns_metric(out, "mbx_retained", "gauge", "Topics with a retained message.", ns, info->retained);
    ns_metric(out, "mbx_retained_max", "gauge", "Size of the retained-message table.", ns,
              info->max_retained);
    for (size_t m = 0; m < sizeof client_metrics / sizeof client_metrics[0]; m++) {
        const client_metric *cm = &client_metrics[m];
        head(out, cm->name, cm->type, cm->help);
        for (size_t i = 0; i < nclients; i++) {
            const mbx_client_info *ci = &clients[i];
            uint64_t v;
            memcpy(&v, (const char *)ci + cm->offset, sizeof v);
            fprintf(out, "%s{namespace=\"", cm->name);
            label_value(out, ns);
            fputs("\",client=\"", out);
            label_value(out, ci->name);
            fprintf(out, "\",slot=\"%u\",node=\"", ci->slot);
            label_value(out, ci->remote ? ci->node : "");
            fprintf(out, "\"} %" PRIu64 "\n", v);
        }
    }
}

void list_prometheus_down(FILE *out, const char *ns)
{
    ns_metric(out, "mbx_up", "gauge", "1 when a broker serves the namespace.", ns, 0);
}
