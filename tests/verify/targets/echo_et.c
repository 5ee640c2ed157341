/* echo_et.c: a non-blocking, edge-triggered epoll(7) echo server, the test
 * target `eagain verify` must pass (under injected EAGAIN and EINTR too),
 * and the edge-triggered reader bugs it must catch.
 *
 * Why it exists: edge-triggered code has its own classic bugs (not reading
 * to EAGAIN), and verify must both pass a correct ET server and catch those.
 * Built plain, this file is a correct server (verify-target-byte-echo-et,
 * verify-target-frame-echo-et); built with one -DBUG_<NAME>, it is that bug.
 * Every bug spot is an `#if defined(BUG_...)` with a comment saying what the
 * bug is and which kind of verify failure must catch it (README.md).
 *
 * Usage: verify-target-<name> PORT. Listens on 127.0.0.1:PORT, serves until
 * SIGTERM (default action), prints nothing on stdout.
 *
 * Protocol, chosen at compile time:
 *   default           bytes: echo every byte back, in order.
 *   -DEAGAIN_FRAMES   frames: 20-byte header, signed big-endian int32 body_len
 *                     at offset 8, body at most 1 MiB; each complete frame is
 *                     echoed unchanged; a negative or oversized length closes
 *                     that connection only.
 *
 * Unlike echo_lt.c, this one ignores SIGPIPE and writes with write(2), not
 * send(2) with MSG_NOSIGNAL, so verify's shim sees both ways of being safe.
 *
 * The loop: an edge says "something changed", never "how much", so each
 * socket remembers input_ready from its last EPOLLIN until recv says EAGAIN,
 * and the listener remembers listener_ready until accept says EAGAIN. A
 * connection stops reading while its pending output is above
 * output_bound_bytes (backpressure) and reads on, without waiting for a new
 * edge, once EPOLLOUT has drained it. EPOLLOUT is registered only while
 * output is pending. Work is capped per wake-up so one busy peer cannot
 * starve the others; capped work left over makes the next epoll_wait not
 * block (timeout 0), and only then.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  read_chunk_bytes = 16 * 1024,
  read_budget_bytes = 256 * 1024,  /* read per connection per round */
  serve_rounds_max = 4,            /* read-then-write rounds per wake-up */
  output_bound_bytes = 256 * 1024, /* stop reading while more is pending */
  accept_burst_max = 256,          /* accept calls per wake-up */
  accept_backoff_ms = 100,         /* listener rest after EMFILE and the like */
  listen_backlog = 512,
  events_per_wait = 256,
  frame_header_bytes = 20,
  frame_length_offset = 8,
  frame_body_max_bytes = 1048576,
};

/* Why a connection ends: an errno, or end_orderly (finished, or a protocol
 * violation). 0 keeps it open. */
enum { keep_open = 0, end_orderly = -1 };

/* Bytes waiting: data[head, len). */
struct byte_queue {
  char *data;
  size_t head;
  size_t len;
  size_t cap;
};

struct connection {
  int fd;
  bool input_ready;     /* an edge said readable; recv has not said EAGAIN */
  bool peer_finished;   /* recv gave 0: flush what is pending, then close */
  bool watching_output; /* EPOLLOUT is registered */
  struct byte_queue output;
#if defined(EAGAIN_FRAMES)
  struct byte_queue input; /* the start of a frame not yet complete */
#endif
};

struct server {
  int listen_fd;
  int epoll_fd;
  struct connection **by_fd; /* indexed by fd; NULL where none */
  size_t capacity;
  bool listener_ready;          /* accept has not said EAGAIN yet */
  long long listener_resume_ms; /* accept again from this time on */
  bool work_left;               /* a connection stopped at its budget */
};

static size_t queue_size(const struct byte_queue *q) { return q->len - q->head; }

static void queue_consume(struct byte_queue *q, size_t n)
{
  q->head += n;
  if (q->head == q->len)
    q->head = q->len = 0;
}

/* Returns false when out of memory. */
static bool queue_append(struct byte_queue *q, const char *bytes, size_t n)
{
  if (q->len + n > q->cap && q->head > 0) {
    memmove(q->data, q->data + q->head, queue_size(q));
    q->len -= q->head;
    q->head = 0;
  }
  if (q->len + n > q->cap) {
    size_t cap = q->cap ? q->cap : 4096;
    while (cap < q->len + n)
      cap *= 2;
    char *grown = realloc(q->data, cap);
    if (!grown)
      return false;
    q->data = grown;
    q->cap = cap;
  }
  memcpy(q->data + q->len, bytes, n);
  q->len += n;
  return true;
}

static long long now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool can_read_more(const struct connection *c)
{
  return c->input_ready && !c->peer_finished &&
         queue_size(&c->output) <= output_bound_bytes;
}

#if defined(EAGAIN_FRAMES)
static int32_t frame_body_len(const char *header)
{
  uint32_t big_endian;
  memcpy(&big_endian, header + frame_length_offset, sizeof big_endian);
  return (int32_t)ntohl(big_endian);
}

/* Moves every complete frame at the front of input to output. */
static int echo_complete_frames(struct connection *c)
{
  while (queue_size(&c->input) >= frame_header_bytes) {
    const char *frame = c->input.data + c->input.head;
    int32_t body_len = frame_body_len(frame);
    if (body_len < 0 || body_len > frame_body_max_bytes)
      return end_orderly;
    size_t frame_bytes = frame_header_bytes + (size_t)body_len;
    if (queue_size(&c->input) < frame_bytes)
      break;
    if (!queue_append(&c->output, frame, frame_bytes))
      return ENOMEM;
    queue_consume(&c->input, frame_bytes);
  }
  return keep_open;
}
#endif

static int take_input(struct connection *c, const char *bytes, size_t n)
{
#if defined(EAGAIN_FRAMES)
  if (!queue_append(&c->input, bytes, n))
    return ENOMEM;
  return echo_complete_frames(c);
#else
  return queue_append(&c->output, bytes, n) ? keep_open : ENOMEM;
#endif
}

/* Reads until EAGAIN (input_ready goes false), FIN, the output bound or the
 * budget; edge-triggered, so stopping early must leave input_ready set. */
static int read_until_eagain(struct connection *c)
{
  char chunk[read_chunk_bytes];
  size_t budget = read_budget_bytes;
  while (budget > 0 && can_read_more(c)) {
    ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
      int end = take_input(c, chunk, (size_t)n);
      if (end != keep_open)
        return end;
#if defined(BUG_ET_ONE_RECV)
      /* BUG et-one-recv: one recv per wake-up, as if level-triggered; what
       * is left in the socket gets no new edge. Caught as stall. */
      c->input_ready = false;
#elif defined(BUG_ET_SHORT_READ_STOP)
      /* BUG et-short-read-stop: a recv shorter than asked is taken as
       * "drained", but a short read is not EAGAIN. Caught as stall. */
      if ((size_t)n < sizeof chunk)
        c->input_ready = false;
#endif
      continue;
    }
    if (n == 0) {
      c->peer_finished = true; /* 0 = the peer sent FIN */
      return keep_open;
    }
    if (errno == EINTR)
      continue; /* interrupted before any byte moved: retry */
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c->input_ready = false; /* drained: the next edge brings us back */
      return keep_open;
    }
    return errno;
  }
  return keep_open;
}

/* Writes pending output until it is empty or the kernel says EAGAIN, when
 * EPOLLOUT (registered while output is pending) brings us back. SIGPIPE is
 * ignored, so a write to a reset peer is an EPIPE here, not a death. */
static int flush_output(struct connection *c)
{
  while (queue_size(&c->output) > 0) {
    ssize_t n = write(c->fd, c->output.data + c->output.head,
                      queue_size(&c->output));
    if (n >= 0) {
      queue_consume(&c->output, (size_t)n); /* a short write: go on from n */
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return keep_open;
    return errno;
  }
  return keep_open;
}

/* EPOLLOUT registered exactly while output is pending. */
static int watch_output(struct server *s, struct connection *c)
{
  bool wanted = queue_size(&c->output) > 0;
  if (wanted == c->watching_output)
    return keep_open;
  struct epoll_event interest = {
      .events = EPOLLIN | EPOLLET | (wanted ? EPOLLOUT : 0u),
      .data.fd = c->fd};
  if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &interest) != 0)
    return errno;
  c->watching_output = wanted;
  return keep_open;
}

static void close_connection(struct server *s, struct connection *c)
{
  close(c->fd); /* also takes it out of the epoll set */
  s->by_fd[c->fd] = NULL;
  free(c->output.data);
#if defined(EAGAIN_FRAMES)
  free(c->input.data);
#endif
  free(c);
}

/* Reads and writes until blocked or out of budget. Reads go on after a
 * flush that brought pending output back under the bound. */
static void serve(struct server *s, struct connection *c)
{
  int end = keep_open;
  for (int rounds = 0; end == keep_open && rounds < serve_rounds_max; ++rounds) {
    if (can_read_more(c))
      end = read_until_eagain(c);
    if (end == keep_open)
      end = flush_output(c);
    if (end == keep_open && c->peer_finished && queue_size(&c->output) == 0)
      end = end_orderly;
    if (!can_read_more(c))
      break;
  }
  if (end == keep_open)
    end = watch_output(s, c);
  if (end != keep_open)
    close_connection(s, c);
  else if (can_read_more(c))
    s->work_left = true;
}

static bool add_connection(struct server *s, int fd)
{
  size_t slot = (size_t)fd;
  if (slot >= s->capacity) {
    size_t capacity = s->capacity ? s->capacity : 64;
    while (capacity <= slot)
      capacity *= 2;
    struct connection **grown = realloc(s->by_fd, capacity * sizeof *grown);
    if (!grown)
      return false;
    memset(grown + s->capacity, 0, (capacity - s->capacity) * sizeof *grown);
    s->by_fd = grown;
    s->capacity = capacity;
  }
  struct connection *c = calloc(1, sizeof *c);
  if (!c)
    return false;
  struct epoll_event interest = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
  if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &interest) != 0) {
    free(c);
    return false;
  }
  c->fd = fd;
  c->input_ready = true; /* data may have come before the registration */
  s->by_fd[slot] = c;
  s->work_left = true;
  return true;
}

/* Accepts until EAGAIN (or accept_burst_max calls); survives every error. */
static void accept_until_eagain(struct server *s)
{
  for (int calls = 0; calls < accept_burst_max; ++calls) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (!add_connection(s, fd))
        close(fd);
      continue;
    }
    switch (errno) {
    case EAGAIN:
#if EAGAIN != EWOULDBLOCK
    case EWOULDBLOCK:
#endif
      s->listener_ready = false; /* drained: the next edge brings us back */
      return;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      /* Out of a resource: the connection stays queued; no new edge will
       * come for it, so listener_ready stays set and we retry after a rest. */
      s->listener_resume_ms = now_ms() + accept_backoff_ms;
      return;
    default:
      /* EINTR, ECONNABORTED, and the network errors accept(2) says to
       * treat like EAGAIN: that connection is gone, take the next. */
      continue;
    }
  }
}

/* -1 (block) unless work is left over (0) or the listener rests (its rest). */
static int wait_timeout_ms(const struct server *s)
{
  if (s->work_left)
    return 0;
  if (!s->listener_ready)
    return -1;
  long long rest_ms = s->listener_resume_ms - now_ms();
  return rest_ms > 0 ? (int)rest_ms : 0;
}

/* Serves every connection that stopped at its budget or is new. */
static void serve_left_over(struct server *s)
{
  s->work_left = false;
  for (size_t fd = 0; fd < s->capacity; ++fd) {
    struct connection *c = s->by_fd[fd];
    if (c && can_read_more(c))
      serve(s, c);
  }
}

static void run(struct server *s)
{
  struct epoll_event events[events_per_wait];
  for (;;) {
    int ready = epoll_wait(s->epoll_fd, events, events_per_wait,
                           wait_timeout_ms(s));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready < 0) {
      perror("epoll_wait");
      exit(1);
    }
    for (int i = 0; i < ready; ++i) {
      int fd = events[i].data.fd;
      if (fd == s->listen_fd) {
        s->listener_ready = true;
      } else if (s->by_fd[fd]) {
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
          s->by_fd[fd]->input_ready = true;
        serve(s, s->by_fd[fd]);
      }
    }
    if (s->work_left)
      serve_left_over(s);
    /* Last, so a new connection never takes an fd these events still name. */
    if (s->listener_ready && now_ms() >= s->listener_resume_ms)
      accept_until_eagain(s);
  }
}

static int listen_on(const char *port_text)
{
  char *end;
  long port = strtol(port_text, &end, 10);
  if (*port_text == '\0' || *end != '\0' || port < 1 || port > 65535) {
    fprintf(stderr, "bad port: %s\n", port_text);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int on = 1;
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(fd, listen_backlog) != 0) {
    perror("listen");
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* a write to a reset peer: EPIPE, not death */
  struct server s = {.listen_fd = listen_on(argv[1])};
  s.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event interest = {.events = EPOLLIN | EPOLLET,
                                 .data.fd = s.listen_fd};
  if (s.epoll_fd < 0 ||
      epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.listen_fd, &interest) != 0) {
    perror("epoll");
    return 1;
  }
  s.listener_ready = true; /* clients may have connected already */
  run(&s);
}
