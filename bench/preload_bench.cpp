// What libeagain-preload.so adds to a socket call no rule matches (issue 13:
// target below 50 ns a call). The calls are the kernel's cheapest on a TCP
// socket, so the shim's part is not lost in the noise of a transfer
// (a 1-byte loopback round trip is about 10 us, give or take 1 us):
//
//   BM_PreloadRecv           recv on an empty non-blocking TCP socket
//                            (EAGAIN from the kernel), through the shim's
//                            own recv: the library is dlopen'ed RTLD_LOCAL,
//                            so only these calls go through it, and with no
//                            EAGAIN_FAULTS it has no rules.
//   BM_PreloadSend           a 0-byte send on a connected TCP socket
//                            (returns 0), through the shim's send.
//   BM_PreloadRecv_Baseline, BM_PreloadSend_Baseline
//                            the same calls straight to libc.
//
// BM_PreloadX - BM_PreloadX_Baseline (ns per call) is the shim's cost: the
// lock, the fd lookup, FaultySys's rule loop and stream count, RealSys.
#include <benchmark/benchmark.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace {

using RecvFunction = ssize_t (*)(int, void*, size_t, int);
using SendFunction = ssize_t (*)(int, const void*, size_t, int);

struct Shim {
    RecvFunction recv = nullptr;
    SendFunction send = nullptr;
};

const Shim& shim() {
    static const Shim loaded = [] {
        Shim s;
        if (void* library = ::dlopen(EAGAIN_PRELOAD_PATH, RTLD_NOW | RTLD_LOCAL)) {
            s.recv = reinterpret_cast<RecvFunction>(::dlsym(library, "recv"));
            s.send = reinterpret_cast<SendFunction>(::dlsym(library, "send"));
        }
        return s;
    }();
    return loaded;
}

// A connected loopback TCP pair, both ends non-blocking, Nagle off.
struct LoopbackPair {
    int client = -1;
    int server = -1;
    LoopbackPair() {
        const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address);
        ::listen(listener, 1);
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        ::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address);
        server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        ::close(listener);
        const int one = 1;
        ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(client, F_SETFL, O_NONBLOCK);
    }
    ~LoopbackPair() {
        ::close(client);
        ::close(server);
    }
    LoopbackPair(const LoopbackPair&) = delete;
    LoopbackPair& operator=(const LoopbackPair&) = delete;
};

void recv_loop(benchmark::State& state, RecvFunction recv) {
    if (recv == nullptr) {
        state.SkipWithError("cannot dlopen " EAGAIN_PRELOAD_PATH);
        return;
    }
    const LoopbackPair pair;
    std::uint8_t byte = 0;
    for (auto _ : state) {
        if (recv(pair.server, &byte, 1, 0) != -1) {
            state.SkipWithError("recv on an empty socket did not fail with EAGAIN");
            return;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void send_loop(benchmark::State& state, SendFunction send) {
    if (send == nullptr) {
        state.SkipWithError("cannot dlopen " EAGAIN_PRELOAD_PATH);
        return;
    }
    const LoopbackPair pair;
    const std::uint8_t byte = 0;
    for (auto _ : state) {
        if (send(pair.client, &byte, 0, 0) != 0) {
            state.SkipWithError("a 0-byte send did not return 0");
            return;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_PreloadRecv_Baseline(benchmark::State& state) {
    recv_loop(state, ::recv);
}
void BM_PreloadRecv(benchmark::State& state) {
    recv_loop(state, shim().recv);
}
void BM_PreloadSend_Baseline(benchmark::State& state) {
    send_loop(state, ::send);
}
void BM_PreloadSend(benchmark::State& state) {
    send_loop(state, shim().send);
}

}  // namespace

BENCHMARK(BM_PreloadRecv_Baseline);
BENCHMARK(BM_PreloadRecv);
BENCHMARK(BM_PreloadSend_Baseline);
BENCHMARK(BM_PreloadSend);
