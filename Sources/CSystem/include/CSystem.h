// Tiny C shim: what Glibc's Swift overlay does not expose (epoll) plus a few inline helpers.
#ifndef HOMEFEED_CSYSTEM_H
#define HOMEFEED_CSYSTEM_H
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <unistd.h>
#include <stdint.h>

// epoll_event is packed on x86-64; build and read it in C so Swift never depends on that layout.
static inline int csys_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev; ev.events = events; ev.data.u64 = data;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}
static inline int csys_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev; ev.events = events; ev.data.u64 = data;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}
static inline int csys_epoll_del(int epfd, int fd) {
    struct epoll_event ev = {0};
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}
// Waits and unpacks up to max events into parallel arrays (events, data).
static inline int csys_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { events[i] = evs[i].events; data[i] = evs[i].data.u64; }
    return n;
}
static inline int csys_errno(void) { return errno; }
// 1 when the CPU has AVX2 and FMA and the OS saves the YMM registers (so code built for -target-cpu haswell may
// run), else 0. Not inline: Swift callers are portable code.
int csys_cpu_has_avx2_fma(void);
#endif
