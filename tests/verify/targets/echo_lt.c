/* echo_lt.c: a non-blocking, level-triggered poll(2) echo server, the test
 * target `eagain verify` must pass, and the classic bugs it must catch.
 *
 * Why it exists: verify judges somebody else's unmodified server; these
 * targets prove it does so correctly. Built plain, this file is a correct
 * server (verify-target-byte-echo-lt, verify-target-frame-echo-lt); built
 * with one -DBUG_<NAME>, it is that bug and nothing else. Every bug spot is an
 * `#if defined(BUG_...)` with a comment saying what the bug is and which kind
 * of verify failure must catch it (README.md has the table).
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
 * The loop: one poll(2) per round over the listener and every connection.
 * Level-triggered, so one recv per readiness is enough and every connection
 * gets its turn each round. A connection asks for POLLIN while it may read
 * (not finished, pending output under output_bound_bytes: backpressure) and
 * POLLOUT only while output is pending. Output is sent at once and what the
 * kernel did not take stays queued. The poll timeout is -1 unless the
 * listener is backing off after EMFILE-like accept errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  read_chunk_bytes = 16 * 1024,
  output_bound_bytes = 256 * 1024, /* stop reading while more is pending */
  accept_burst_max = 256,          /* accept calls per round */
  accept_backoff_ms = 100,         /* listener rest after EMFILE and the like */
  listen_backlog = 512,
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
  bool peer_finished; /* recv gave 0: flush what is pending, then close */
  struct byte_queue output;
#if defined(EAGAIN_FRAMES)
  struct byte_queue input; /* the start of a frame not yet complete */
#endif
};

struct server {
  int listen_fd;
  struct connection **by_fd; /* indexed by fd; NULL where none */
  size_t capacity;
  struct pollfd *polled; /* one per connection, plus the listener */
  size_t polled_capacity;
  long long listener_resume_ms; /* accept again from this time on */
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

static bool may_read(const struct connection *c)
{
  return !c->peer_finished && queue_size(&c->output) <= output_bound_bytes;
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
#if defined(BUG_UNCHECKED_LENGTH)
    /* BUG unchecked-length: the length is never checked; a negative one
     * reads as ~4 GiB, so the connection waits for a body that never comes
     * and stays open. Caught as accepted-hostile-length. */
    size_t frame_bytes = frame_header_bytes + (size_t)(uint32_t)body_len;
#else
    if (body_len < 0 || body_len > frame_body_max_bytes)
      return end_orderly;
    size_t frame_bytes = frame_header_bytes + (size_t)body_len;
#endif
    if (queue_size(&c->input) < frame_bytes)
      break;
    if (!queue_append(&c->output, frame, frame_bytes))
      return ENOMEM;
    queue_consume(&c->input, frame_bytes);
#if defined(BUG_FIRST_STICKY_ONLY)
    /* BUG first-sticky-only: only the first frame completed by a read is
     * handled; the frames stuck behind it in the same read are discarded.
     * Caught as data-loss by coalesced frames. */
    queue_consume(&c->input, queue_size(&c->input));
    break;
#endif
  }
#if defined(BUG_NO_REASSEMBLY)
  /* BUG no-reassembly: each read is taken as whole frames; an incomplete
   * tail is dropped instead of kept for the next read, which is then parsed
   * from the middle of a frame. Caught as data-loss (or data-corruption) by a
   * frame split across writes. */
  queue_consume(&c->input, queue_size(&c->input));
#endif
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

/* One recv (level-triggered: poll says again if more is there). */
static int read_some(struct connection *c)
{
  char chunk[read_chunk_bytes];
  for (;;) {
    ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
    if (n > 0)
      return take_input(c, chunk, (size_t)n);
    if (n == 0) {
#if defined(BUG_RECV0_NO_DATA)
      /* BUG recv0-no-data: 0 is taken as "no data yet", so the connection
       * is never closed (and poll, level-triggered, reports it readable
       * forever). Caught as missing-eof after a half-close. */
      return keep_open;
#else
      c->peer_finished = true; /* 0 = the peer sent FIN */
      return keep_open;
#endif
    }
    if (errno == EINTR) {
#if defined(BUG_EINTR_FATAL)
      /* BUG eintr-fatal: EINTR ends the connection instead of a retry.
       * Caught as connection-dropped. */
      return EINTR;
#else
      continue; /* interrupted before any byte moved: retry */
#endif
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return keep_open;
    return errno;
  }
}

#if defined(BUG_SLEEP_ON_EAGAIN)
static void sleep_100ms(void)
{
  struct timespec pause = {0, 100 * 1000 * 1000};
  while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
  }
}
#endif

/* Sends pending output until it is empty or the kernel says EAGAIN, when
 * POLLOUT (asked for while output is pending) brings us back. */
static int flush_output(struct connection *c)
{
#if defined(BUG_SIGPIPE)
  /* BUG sigpipe: plain send, no MSG_NOSIGNAL, SIGPIPE not ignored: a send to
   * a peer that reset kills the server. Caught as killed-by-sigpipe. */
  const int flags = 0;
#else
  const int flags = MSG_NOSIGNAL;
#endif
  while (queue_size(&c->output) > 0) {
    ssize_t n = send(c->fd, c->output.data + c->output.head,
                     queue_size(&c->output), flags);
    if (n >= 0) {
#if defined(BUG_SHORT_SEND_COMPLETE)
      /* BUG short-send-complete: any return is taken as "all sent"; the
       * bytes past a short write are lost. Caught as data-loss. */
      queue_consume(&c->output, queue_size(&c->output));
#else
      queue_consume(&c->output, (size_t)n); /* a short write: go on from n */
#endif
      continue;
    }
    if (errno == EINTR) {
#if defined(BUG_EINTR_FATAL)
      return EINTR; /* BUG eintr-fatal, as in read_some */
#else
      continue;
#endif
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
#if defined(BUG_DROP_ON_EAGAIN)
      /* BUG drop-on-eagain: the output the kernel would not take is thrown
       * away. Caught as data-loss. */
      queue_consume(&c->output, queue_size(&c->output));
#elif defined(BUG_SLEEP_ON_EAGAIN)
      /* BUG sleep-on-eagain: sleep and retry inside the handler; the whole
       * loop blocks while one peer does not read. Caught as starvation. */
      sleep_100ms();
      continue;
#endif
      return keep_open;
    }
    return errno;
  }
  return keep_open;
}

static void close_connection(struct server *s, struct connection *c, int why)
{
#if defined(BUG_FD_LEAK_ON_RESET)
  /* BUG fd-leak-on-reset: on the reset path the connection is forgotten
   * without close(); its fd stays open forever. Caught as fd-leak. */
  if (why != ECONNRESET && why != EPIPE)
    close(c->fd);
#else
  (void)why;
  close(c->fd);
#endif
  s->by_fd[c->fd] = NULL;
  free(c->output.data);
#if defined(EAGAIN_FRAMES)
  free(c->input.data);
#endif
  free(c);
}

static void serve(struct server *s, struct connection *c, short revents)
{
  int end = keep_open;
  if (revents & POLLNVAL)
    end = EBADF;
  else if ((revents & (POLLIN | POLLERR | POLLHUP)) && may_read(c))
    end = read_some(c);
  if (end == keep_open)
    end = flush_output(c);
  if (end == keep_open && c->peer_finished && queue_size(&c->output) == 0)
    end = end_orderly;
  if (end != keep_open)
    close_connection(s, c, end);
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
  c->fd = fd;
  s->by_fd[slot] = c;
  return true;
}

/* Accepts until EAGAIN (or accept_burst_max calls); survives every error. */
static void accept_all(struct server *s)
{
  for (int calls = 0; calls < accept_burst_max; ++calls) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (!add_connection(s, fd))
        close(fd);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return;
#if defined(BUG_ACCEPT_ERROR_FATAL)
    /* BUG accept-error-fatal: any accept error but EAGAIN ends the server.
     * Caught as exited. */
    exit(1);
#else
    switch (errno) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      /* Out of a resource: the connection stays queued and the listener
       * readable, so rest the listener instead of spinning on it. */
      s->listener_resume_ms = now_ms() + accept_backoff_ms;
      return;
    default:
      /* EINTR, ECONNABORTED, and the network errors accept(2) says to
       * treat like EAGAIN: that connection is gone, take the next. */
      continue;
    }
#endif
  }
}

/* Fills s->polled; returns the entries and sets *timeout_ms. */
static size_t build_poll_set(struct server *s, int *timeout_ms)
{
  size_t needed = s->capacity + 1;
  if (needed > s->polled_capacity) {
    struct pollfd *grown = realloc(s->polled, needed * sizeof *grown);
    if (!grown) {
      perror("poll set");
      exit(1);
    }
    s->polled = grown;
    s->polled_capacity = needed;
  }
  size_t n = 0;
  *timeout_ms = -1;
  long long rest_ms = s->listener_resume_ms - now_ms();
  if (rest_ms > 0)
    *timeout_ms = (int)rest_ms;
  else
    s->polled[n++] = (struct pollfd){s->listen_fd, POLLIN, 0};
  for (size_t fd = 0; fd < s->capacity; ++fd) {
    struct connection *c = s->by_fd[fd];
    if (!c)
      continue;
    short events = (short)((may_read(c) ? POLLIN : 0) |
                           (queue_size(&c->output) > 0 ? POLLOUT : 0));
    s->polled[n++] = (struct pollfd){c->fd, events, 0};
  }
#if defined(BUG_BUSY_POLL)
  /* BUG busy-poll: poll never blocks; the loop spins while every peer is
   * idle. Caught as busy-loop. */
  *timeout_ms = 0;
#endif
  return n;
}

static void run(struct server *s)
{
  for (;;) {
    int timeout_ms;
    size_t n = build_poll_set(s, &timeout_ms);
    int ready = poll(s->polled, n, timeout_ms);
#if defined(BUG_POLL_EINTR_FATAL)
    /* BUG poll-eintr-fatal: an interrupted poll is taken for a broken one and
     * the server exits. Caught as exited. */
#else
    if (ready < 0 && errno == EINTR)
      continue; /* a signal came first: nothing is lost, poll again */
#endif
    if (ready < 0) {
      perror("poll");
      exit(1);
    }
    bool listener_ready = false;
    for (size_t i = 0; i < n; ++i) {
      struct pollfd *p = &s->polled[i];
      if (p->revents == 0)
        continue;
      if (p->fd == s->listen_fd)
        listener_ready = true;
      else if (s->by_fd[p->fd])
        serve(s, s->by_fd[p->fd], p->revents);
    }
    /* Last, so a new connection never takes an fd this round still names. */
    if (listener_ready)
      accept_all(s);
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
  struct server s = {.listen_fd = listen_on(argv[1])};
  run(&s);
}
