// A persistent pool of worker threads for the many short parallel regions of decode.
//
// Decode runs about five parallel regions per layer (q/k/v, attention, output, gate/up, down),
// each a fraction of a millisecond. Waking threads through a dispatch queue for each costs tens of
// microseconds, which at a 110M model's 30 tokens/s is about a tenth of the time. Here workers
// that finish a job spin on a generation counter for a short while (the serial work between two
// regions takes microseconds) and only then sleep on a condition variable, so back-to-back
// regions are picked up at once, while a pause of a millisecond or more (prefill's BLAS calls,
// which run OpenBLAS's own threads, or an idle server) leaves the cores to others.
//
// One caller at a time: balcony_pool_run returns 0 without running anything when another thread
// holds the pool, and the caller then uses another way to run its work.

#include "ckernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BALCONY_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define BALCONY_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define BALCONY_CPU_RELAX() ((void)0)
#endif

enum { BALCONY_POOL_MAX_WORKERS = 255 };

// Spin iterations before a worker sleeps. A pause is 10-150 cycles depending on the CPU, so this
// is roughly 50-500 microseconds: longer than the gaps between decode's regions, shorter than
// anything that would take a core from BLAS for long.
static const unsigned spin_iterations = 1u << 14;

static struct {
    pthread_mutex_t busy;      // held by the one caller using the pool
    pthread_mutex_t lock;      // guards sleeping workers and worker creation
    pthread_cond_t wake;
    _Atomic unsigned long generation;
    _Atomic int sleepers;
    _Atomic int pending;       // workers still running the current job
    _Atomic unsigned long parks;  // bumped by balcony_pool_park: spinning workers go to sleep
    int workers;               // threads started so far
    unsigned long start_generation;  // the generation new workers wait past
    // The current job. Atomic because a worker that sat out the previous job may read them while
    // the next is being posted; it re-reads the generation to make sure they belong together.
    _Atomic int active;        // participants, the caller included
    _Atomic(balcony_task_fn) fn;
    _Atomic(void *) context;
} pool = {
    .busy = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static void *worker_main(void *arg) {
    const int index = (int)(intptr_t)arg;  // 1 ... workers; the caller is 0
    // Not the current generation: the job the worker was started for may already be posted.
    // (Workers are started only by the caller holding the pool, whose job waits for them, so
    // start_generation cannot change before they have read it.)
    pthread_mutex_lock(&pool.lock);
    unsigned long seen = pool.start_generation;
    pthread_mutex_unlock(&pool.lock);
    for (;;) {
        unsigned long now = seen;
        const unsigned long parks = atomic_load_explicit(&pool.parks, memory_order_relaxed);
        for (unsigned i = 0; i < spin_iterations; i++) {
            now = atomic_load_explicit(&pool.generation, memory_order_acquire);
            if (now != seen || atomic_load_explicit(&pool.parks, memory_order_relaxed) != parks) break;
            BALCONY_CPU_RELAX();
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.lock);
            // Counted as a sleeper before the last look at the generation: a caller that bumps the
            // generation afterwards sees the count and broadcasts under the same lock.
            atomic_fetch_add(&pool.sleepers, 1);
            while ((now = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        int active;
        balcony_task_fn fn;
        void *context;
        for (;;) {
            active = atomic_load_explicit(&pool.active, memory_order_relaxed);
            fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
            context = atomic_load_explicit(&pool.context, memory_order_relaxed);
            unsigned long check = atomic_load_explicit(&pool.generation, memory_order_acquire);
            if (check == now) break;
            now = check;
        }
        seen = now;
        if (index < active) {
            fn(context, index);
            atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
        }
    }
    return NULL;
}

// Starts workers up to `count`; returns how many exist.
static int ensure_workers(int count) {
    if (count > BALCONY_POOL_MAX_WORKERS) count = BALCONY_POOL_MAX_WORKERS;
    pthread_mutex_lock(&pool.lock);
    pool.start_generation = atomic_load(&pool.generation);
    while (pool.workers < count) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        pool.workers += 1;
    }
    int workers = pool.workers;
    pthread_mutex_unlock(&pool.lock);
    return workers;
}

int balcony_pool_run(int threads, balcony_task_fn fn, void *context) {
    if (threads <= 1) {
        fn(context, 0);
        return 1;
    }
    if (pthread_mutex_trylock(&pool.busy) != 0) return 0;
    if (ensure_workers(threads - 1) < threads - 1) {
        pthread_mutex_unlock(&pool.busy);
        return 0;
    }
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store_explicit(&pool.active, threads, memory_order_relaxed);
    atomic_store_explicit(&pool.pending, threads - 1, memory_order_relaxed);
    // Publishes fn, context, active and pending to the workers that see the new generation.
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(context, 0);
    // Workers finish about when the caller does; a long wait means one was descheduled, and
    // yielding then lets it run sooner on a busy machine.
    for (unsigned spins = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; spins++) {
        if (spins < spin_iterations) BALCONY_CPU_RELAX();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool.busy);
    return 1;
}

void balcony_pool_park(void) { atomic_fetch_add_explicit(&pool.parks, 1, memory_order_relaxed); }

long balcony_atomic_fetch_add(long *counter, long value) {
    return atomic_fetch_add_explicit((_Atomic long *)counter, value, memory_order_relaxed);
}
