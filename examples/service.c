/*
 * service: a request/reply service and its client in a few lines each: an "adder" that
 * answers a JSON array of numbers with their sum, several of which may serve together as
 * a group.
 *
 *   service serve [-N NAMESPACE] [COUNT]     serve COUNT requests (0: until shutdown)
 *   service ask [-N NAMESPACE] JSON          ask the adder and print its answer
 *
 * The sum is computed from the request's text with strtod, to keep the example free of a
 * JSON library: numbers are read, everything else is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mailbox.h>

static double sum_of(const char *json)
{
    double sum = 0;
    for (const char *p = json; *p != '\0';) {
        char *end;
        if ((*p >= '0' && *p <= '9') || *p == '-') {
            double v = strtod(p, &end);
            if (end != p) {
                sum += v;
                p = end;
                continue;
            }
        }
        p++;
    }
    return sum;
}

static int serve(const char *ns, long count)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    o.client_name = "adder";
    o.group = 1; /* start several: requests spread over them */
    mbx_client *c;
    mbx_err err = mbx_connect(&o, &c);
    if (err != MBX_OK) {
        fprintf(stderr, "service: %s\n", mbx_strerror(err));
        return 1;
    }
    mbx_message *m = mbx_message_new();
    for (long served = 0; count == 0 || served < count;) {
        if (mbx_recv(c, m, -1) != MBX_OK)
            break; /* shutdown */
        if (mbx_message_kind(m) != MBX_KIND_REQUEST)
            continue;
        char answer[64];
        int n = snprintf(answer, sizeof answer, "%.17g", sum_of(mbx_message_body(m, NULL)));
        (void)mbx_reply(c, m, answer, (size_t)n, 1000); /* a requester gone: fine */
        served++;
    }
    mbx_message_free(m);
    mbx_close(c);
    return 0;
}

static int ask(const char *ns, const char *json)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    o.namespace_name = ns;
    mbx_client *c;
    mbx_err err = mbx_connect(&o, &c);
    mbx_message *reply = mbx_message_new();
    if (err == MBX_OK)
        err = mbx_request(c, "adder", json, strlen(json), reply, 5000);
    if (err == MBX_OK)
        printf("%s\n", mbx_message_body(reply, NULL));
    else
        fprintf(stderr, "service: %s\n", mbx_strerror(err));
    mbx_message_free(reply);
    mbx_close(c);
    return err == MBX_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *ns = NULL;
    int arg = 2;
    if (argc > 3 && strcmp(argv[2], "-N") == 0) {
        ns = argv[3];
        arg = 4;
    }
    if (argc >= 2 && strcmp(argv[1], "serve") == 0 && argc - arg <= 1)
        return serve(ns, argc - arg == 1 ? atol(argv[arg]) : 0);
    if (argc >= 2 && strcmp(argv[1], "ask") == 0 && argc - arg == 1)
        return ask(ns, argv[arg]);
    fprintf(stderr,
            "usage: service serve [-N NAMESPACE] [COUNT] | service ask [-N NAMESPACE] JSON\n");
    return 2;
}
