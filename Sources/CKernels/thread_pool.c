// A persistent pool of worker threads for the many short parallel regions of decode.
//
// Decode runs about five parallel regions per layer (q/k/v, attention, output, gate/up, down),
// each a fraction of a millisecond. Waking threads through a dispatch queue for each costs tens of
// microseconds, which at a 110M model's 30 tokens/s is about a tenth of the time. Here workers
// that finish a job spin on a job ticket for a short while (the serial work between two
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

// Tests only (declared here rather than in ckernels.h; ThreadPoolStressTests binds it by name):
// a hook the pool calls in the caller after it has stored a job and before it posts it, and in
// a worker after it has seen a new job posted and before it acts on it. Tests sleep there to widen
// the windows in which a hand-over could go wrong, so that a broken protocol shows on any
// machine, not only when the scheduler happens to preempt a thread at the wrong instruction.
enum { BALCONY_POOL_CALLER_POSTING = 0, BALCONY_POOL_WORKER_SAW_TICKET = 1 };
typedef void (*balcony_pool_test_hook)(int where, int index);
void balcony_pool_set_test_hook(balcony_pool_test_hook hook);

enum { BALCONY_POOL_MAX_WORKERS = 255 };
// Participants fit in the ticket's low bits: at most BALCONY_POOL_MAX_WORKERS + 1 = 256.
enum { ACTIVE_BITS = 9 };
static const unsigned long active_mask = (1ul << ACTIVE_BITS) - 1;

// Spin iterations before a worker sleeps. A pause is 10-150 cycles depending on the CPU, so this
// is roughly 50-500 microseconds: longer than the gaps between decode's regions, shorter than
// anything that would take a core from BLAS for long.
static const unsigned spin_iterations = 1u << 14;

static struct {
    pthread_mutex_t busy;      // held by the one caller using the pool
    pthread_mutex_t lock;      // guards sleeping workers and worker creation
    pthread_cond_t wake;
    // The job ticket: (sequence << ACTIVE_BITS) | participants (the caller included). Both halves
    // in one word, so a worker learns atomically which job is posted and whether it takes part.
    _Atomic unsigned long ticket;
    _Atomic int sleepers;
    _Atomic int pending;       // workers still running the current job
    _Atomic unsigned long parks;  // bumped by balcony_pool_park: spinning workers go to sleep
    int workers;               // threads started so far
    unsigned long start_ticket;  // the ticket new workers wait past
    // The current job. A worker reads fn and context only when the ticket names it a participant:
    // the caller waits for every participant before it returns or posts the next job, so these
    // stay fixed for as long as a participant can read them. A worker that sits a job out never
    // reads them (they may already belong to the next job, or to a caller's stack that is gone).
    balcony_task_fn fn;
    void *context;
    _Atomic(balcony_pool_test_hook) test_hook;  // tests only; NULL in use
} pool = {
    .busy = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static void *worker_main(void *arg) {
    const unsigned long index = (unsigned long)(intptr_t)arg;  // 1 ... workers; the caller is 0
    // Not the current ticket: the job the worker was started for may already be posted.
    // (Workers are started only by the caller holding the pool, whose job waits for them, so
    // start_ticket cannot change before they have read it.)
    pthread_mutex_lock(&pool.lock);
    unsigned long seen = pool.start_ticket;
    pthread_mutex_unlock(&pool.lock);
    for (;;) {
        unsigned long now = seen;
        const unsigned long parks = atomic_load_explicit(&pool.parks, memory_order_relaxed);
        for (unsigned i = 0; i < spin_iterations; i++) {
            now = atomic_load_explicit(&pool.ticket, memory_order_acquire);
            if (now != seen || atomic_load_explicit(&pool.parks, memory_order_relaxed) != parks) break;
            BALCONY_CPU_RELAX();
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.lock);
            // Counted as a sleeper before the last look at the ticket: a caller that posts a job
            // afterwards sees the count and broadcasts under the same lock.
            atomic_fetch_add(&pool.sleepers, 1);
            while ((now = atomic_load(&pool.ticket)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = now;
        balcony_pool_test_hook hook = atomic_load_explicit(&pool.test_hook, memory_order_relaxed);
        if (hook) hook(BALCONY_POOL_WORKER_SAW_TICKET, (int)index);
        // A participant of job `now` holds that job open (the caller waits for its decrement), so
        // the fields read here are the ones the acquire of the ticket published. Non-participants
        // go straight back to waiting; they may skip jobs, which is harmless.
        if (index < (now & active_mask)) {
            pool.fn(pool.context, (int)index);
            atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
        }
    }
    return NULL;
}

// Starts workers up to `count`; returns how many exist.
static int ensure_workers(int count) {
    if (count > BALCONY_POOL_MAX_WORKERS) count = BALCONY_POOL_MAX_WORKERS;
    pthread_mutex_lock(&pool.lock);
    pool.start_ticket = atomic_load(&pool.ticket);
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
    // Safe to overwrite: the previous job's participants have all finished with them (its
    // caller waited for pending to reach 0), and non-participants never read them.
    pool.fn = fn;
    pool.context = context;
    atomic_store_explicit(&pool.pending, threads - 1, memory_order_relaxed);
    // Publishes fn, context and pending to the participants, which read them after acquiring the
    // new ticket. The sequence part only grows, so a ticket never repeats while a worker waits.
    balcony_pool_test_hook hook = atomic_load_explicit(&pool.test_hook, memory_order_relaxed);
    if (hook) hook(BALCONY_POOL_CALLER_POSTING, 0);
    const unsigned long sequence = (atomic_load_explicit(&pool.ticket, memory_order_relaxed) >> ACTIVE_BITS) + 1;
    // Sequentially consistent, not merely release: the load of `sleepers` below must not be
    // ordered before this store, or a worker that counts itself a sleeper and then sees the old
    // ticket would sleep through the job while the caller, seeing no sleepers, skips the wake-up.
    atomic_store(&pool.ticket, (sequence << ACTIVE_BITS) | (unsigned long)threads);
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

void balcony_pool_set_test_hook(balcony_pool_test_hook hook) {
    atomic_store_explicit(&pool.test_hook, hook, memory_order_relaxed);
}

void balcony_pool_park(void) { atomic_fetch_add_explicit(&pool.parks, 1, memory_order_relaxed); }

long balcony_atomic_fetch_add(long *counter, long value) {
    return atomic_fetch_add_explicit((_Atomic long *)counter, value, memory_order_relaxed);
}
