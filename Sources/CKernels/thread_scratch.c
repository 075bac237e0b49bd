// A scratch buffer per thread, kept between calls: prefill widens Q8_0 tiles of about 16 MiB on
// every product, and a fresh allocation of that size is a fresh mapping whose pages fault in again.

#include "ckernels.h"

#include <pthread.h>
#include <stdlib.h>

// Freed when its thread exits.
struct thread_scratch {
    float *data;
    size_t capacity;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *value) {
    struct thread_scratch *s = value;
    free(s->data);
    free(s);
}

static void scratch_key_create(void) { pthread_key_create(&scratch_key, scratch_free); }

float *balcony_thread_scratch(size_t count) {
    pthread_once(&scratch_once, scratch_key_create);
    struct thread_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (s->capacity < count) {
        free(s->data);
        s->data = malloc(count * sizeof(float));
        s->capacity = s->data ? count : 0;
    }
    return s->data;
}
