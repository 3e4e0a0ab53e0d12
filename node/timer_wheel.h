/* Per-worker hierarchical timer wheel: O(1) add and delete, expiry in tick-sized steps;
 * used for connect, idle and drain timeouts without a syscall per timer. */
#ifndef VORO_NODE_TIMER_WHEEL_H
#define VORO_NODE_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

struct voro_timer;
typedef void (*voro_timer_cb)(struct voro_timer *timer);

/* Caller-owned; embed it in the object it times. */
struct voro_timer {
    struct voro_timer *next;
    struct voro_timer *prev;
    uint64_t expires; /* absolute tick */
    voro_timer_cb cb;
    void *data;
};

#define VORO_WHEEL_LEVELS 4
#define VORO_WHEEL_SLOTS 64

struct voro_timer_wheel {
    uint64_t tick_ms;
    uint64_t now_tick;
    uint64_t origin_ms;
    uint32_t count;
    struct voro_timer *slots[VORO_WHEEL_LEVELS][VORO_WHEEL_SLOTS];
};

void voro_timer_wheel_init(struct voro_timer_wheel *w, uint64_t tick_ms, uint64_t now_ms);
static inline void voro_timer_init(struct voro_timer *t, voro_timer_cb cb, void *data)
{
    t->next = t->prev = 0;
    t->expires = 0;
    t->cb = cb;
    t->data = data;
}
static inline bool voro_timer_pending(const struct voro_timer *t) { return t->prev != 0; }
/* (Re)arms `t` to fire `delay_ms` from the wheel's current time (rounded up to a tick). */
void voro_timer_add(struct voro_timer_wheel *w, struct voro_timer *t, uint64_t delay_ms);
/* Disarms `t` if pending. */
void voro_timer_del(struct voro_timer_wheel *w, struct voro_timer *t);
/* Moves the wheel to now_ms and runs the callbacks of expired timers (a callback may add or
 * delete timers, including its own). Returns the number fired. */
int voro_timer_wheel_advance(struct voro_timer_wheel *w, uint64_t now_ms);
/* Milliseconds until the next tick that may hold an expiry, or -1 if no timer is pending. */
int64_t voro_timer_wheel_next_ms(const struct voro_timer_wheel *w, uint64_t now_ms);

#endif
