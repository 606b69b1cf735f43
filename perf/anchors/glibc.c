/* The glibc side of the comparison: the same work as the crate's child,
 * done with the C library's own atexit. Built with `cc -O2` at run time.
 *
 *   glibc lifecycle N   register N handlers (the oldest stops the timer,
 *                       the newest starts it, N - 2 count calls between),
 *                       then exit so that the C library runs them.
 *   glibc register-only N
 *                       the same registrations, then _exit: no exit run,
 *                       so that an instruction count of the run is the
 *                       difference between the two modes.
 *
 * Prints "key value" lines; run_ns_per_handler comes from the oldest
 * handler, during exit. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong calls;
static long long run_started;
static long handlers;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long rss_bytes(void) {
    long size, resident;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%ld %ld", &size, &resident) != 2) {
        fprintf(stderr, "glibc: cannot read /proc/self/statm\n");
        exit(2);
    }
    fclose(statm);
    return resident * sysconf(_SC_PAGESIZE);
}

static void count(void) {
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
}

static void start(void) {
    run_started = now_ns();
}

static void stop(void) {
    long long elapsed = now_ns() - run_started;
    printf("run_ns_per_handler %.3f\nran %lu\n", (double)elapsed / (double)(handlers - 1),
           atomic_load(&calls));
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "lifecycle") != 0 && strcmp(argv[1], "register-only") != 0)) {
        fprintf(stderr, "usage: glibc lifecycle|register-only N\n");
        return 2;
    }
    handlers = atol(argv[2]);
    if (handlers < 3) {
        fprintf(stderr, "glibc: N must be at least 3\n");
        return 2;
    }
    /* The first read opens a FILE; measure from the second one on. */
    rss_bytes();
    long before = rss_bytes();
    atexit(stop);
    long long t0 = now_ns();
    for (long i = 0; i < handlers - 2; i++) {
        atexit(count);
    }
    long long t1 = now_ns();
    atexit(start);
    long after = rss_bytes();
    printf("register_ns %.3f\nbytes_per_handler %.3f\n", (double)(t1 - t0) / (double)(handlers - 2),
           (double)(after - before) / (double)handlers);
    fflush(stdout);
    if (strcmp(argv[1], "register-only") == 0) {
        _exit(0);
    }
    return 0;
}
