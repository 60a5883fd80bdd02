/*
 * event_loop_epoll: one epoll loop that serves a mailbox, a timer and a Unix socket,
 * the way a Linux daemon would: no thread per source, no polling.
 *
 *   event_loop_epoll [-N NAMESPACE] NAME SOCKET_PATH
 *
 * It takes the mailbox NAME and prints every message that arrives ("mailbox FROM BODY");
 * every 200 ms the timer prints "tick N"; each line a client writes to the Unix socket at
 * SOCKET_PATH (one JSON value per line) is sent to NAME, so it comes back through the
 * mailbox. The message {"quit":true} ends the program (exit 0).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <mailbox.h>

enum { SOURCE_MAILBOX, SOURCE_TIMER, SOURCE_LISTENER, SOURCE_CONNECTION };

static int fail(const char *what)
{
    fprintf(stderr, "event_loop_epoll: %s\n", what);
    return 1;
}

static int add(int ep, int fd, int source)
{
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = ((uint64_t)source << 32) | (uint32_t)fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Takes everything waiting (timeout 0) until the mailbox is empty: the handle is then
 * quiet until the next message. Returns false on {"quit":true} or an error. */
static bool serve_mailbox(mbx_client *c, mbx_message *m)
{
    mbx_err err;
    while ((err = mbx_recv(c, m, 0)) == MBX_OK) {
        const char *body = mbx_message_body(m, NULL);
        printf("mailbox %s %s\n", mbx_message_from(m), body);
        if (strcmp(body, "{\"quit\":true}") == 0)
            return false;
    }
    if (err != MBX_ETIMEDOUT) {
        fprintf(stderr, "event_loop_epoll: receive: %s\n", mbx_strerror(err));
        return false;
    }
    return true;
}

/* Reads what a socket client wrote and sends each complete line to ourselves. */
static bool serve_connection(int fd, mbx_client *c)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0)
        return false; /* closed */
    buf[n] = '\0';
    for (char *line = strtok(buf, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
        mbx_err err = mbx_send(c, mbx_client_name(c), line, strlen(line), 1000);
        if (err != MBX_OK)
            fprintf(stderr, "event_loop_epoll: '%s' not sent: %s\n", line, mbx_strerror(err));
    }
    return true;
}

int main(int argc, char **argv)
{
    mbx_connect_options o;
    mbx_connect_options_init(&o);
    int arg = 1;
    if (argc > 2 && strcmp(argv[1], "-N") == 0) {
        o.namespace_name = argv[2];
        arg = 3;
    }
    if (argc - arg != 2)
        return fail("usage: event_loop_epoll [-N NAMESPACE] NAME SOCKET_PATH");
    o.client_name = argv[arg];
    const char *path = argv[arg + 1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    mbx_client *c;
    mbx_err err = mbx_connect(&o, &c);
    if (err != MBX_OK)
        return fail(mbx_strerror(err));
    mbx_handle wake;
    if (mbx_wait_handle(c, &wake) != MBX_OK)
        return fail("no wake handle");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec every = {.it_interval = {0, 200000000}, .it_value = {0, 200000000}};
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    unlink(path);
    if (ep < 0 || timer < 0 || listener < 0 || timerfd_settime(timer, 0, &every, NULL) != 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 8) != 0 ||
        add(ep, wake, SOURCE_MAILBOX) != 0 || add(ep, timer, SOURCE_TIMER) != 0 ||
        add(ep, listener, SOURCE_LISTENER) != 0)
        return fail(strerror(errno));

    mbx_message *m = mbx_message_new();
    unsigned long ticks = 0;
    bool running = serve_mailbox(c, m); /* what came before the loop started */
    while (running) {
        struct epoll_event events[8];
        int n = epoll_wait(ep, events, 8, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n && running; i++) {
            int source = (int)(events[i].data.u64 >> 32);
            int fd = (int)(uint32_t)events[i].data.u64;
            if (source == SOURCE_MAILBOX) {
                running = serve_mailbox(c, m);
            } else if (source == SOURCE_TIMER) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) == sizeof expirations)
                    printf("tick %lu\n", ticks += expirations);
            } else if (source == SOURCE_LISTENER) {
                int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
                if (conn >= 0 && add(ep, conn, SOURCE_CONNECTION) != 0)
                    close(conn);
            } else if (!serve_connection(fd, c)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
        }
    }
    mbx_message_free(m);
    mbx_close(c);
    close(listener);
    unlink(path);
    close(timer);
    close(ep);
    return 0;
}
