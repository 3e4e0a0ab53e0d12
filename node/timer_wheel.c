/* Hierarchical timer wheel (4 levels x 64 slots): O(1) arm/disarm, cascading expiry per tick. */
#include "node/timer_wheel.h"

#include <stddef.h>

/*
 * List scheme: each slot is a NULL-terminated singly linked list threaded through `next`,
 * and `prev` holds the address of whatever pointer points at the timer (the slot head or
 * the previous timer's `next`), so unlinking never needs to know the slot. Because `next`
 * is the first member, the address of a timer's `next` field is the timer's own address,
 * and the address of a slot is stored cast to a timer pointer. `prev != NULL` therefore
 * means "linked somewhere", which is what voro_timer_pending tests.
 */
_Static_assert(offsetof(struct voro_timer, next) == 0, "pointer-to-pointer scheme needs next first");

#define BITS 6u /* log2(VORO_WHEEL_SLOTS) */
#define MASK ((uint64_t)VORO_WHEEL_SLOTS - 1)
_Static_assert(VORO_WHEEL_SLOTS == 1u << BITS, "slots must be 2^BITS");
/* Ticks covered by the whole wheel: beyond this a timer is parked in the top level and re-cascaded. */
#define SPAN ((uint64_t)1 << (BITS * VORO_WHEEL_LEVELS))

static inline struct voro_timer **pprev_of(const struct voro_timer *t) { return (struct voro_timer **)(void *)t->prev; }

static void list_push(struct voro_timer **head, struct voro_timer *t)
{
    t->next = *head;
    if (t->next)
        t->next->prev = t;     /* &t->next == (struct voro_timer **)t */
    *head = t;
    t->prev = (struct voro_timer *)(void *)head;
}

static void list_unlink(struct voro_timer *t)
{
    *pprev_of(t) = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = NULL;
    t->prev = NULL;
}

/* Files `t` (t->expires > w->now_tick) into the level whose slot width fits its distance. */
static void place(struct voro_timer_wheel *w, struct voro_timer *t)
{
    uint64_t e = t->expires;
    uint64_t diff = e - w->now_tick;
    unsigned level = 0;
    if (diff >= SPAN) {
        /* Too far: park at the top level's furthest slot; the cascade re-files it. */
        e = w->now_tick + SPAN - 1;
        diff = SPAN - 1;
    }
    while (level + 1 < VORO_WHEEL_LEVELS && diff >= ((uint64_t)1 << (BITS * (level + 1))))
        level++;
    list_push(&w->slots[level][(e >> (BITS * level)) & MASK], t);
}

void voro_timer_wheel_init(struct voro_timer_wheel *w, uint64_t tick_ms, uint64_t now_ms)
{
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->now_tick = 0;
    w->origin_ms = now_ms;
    w->count = 0;
    for (unsigned l = 0; l < VORO_WHEEL_LEVELS; l++)
        for (unsigned s = 0; s < VORO_WHEEL_SLOTS; s++)
            w->slots[l][s] = NULL;
}

void voro_timer_add(struct voro_timer_wheel *w, struct voro_timer *t, uint64_t delay_ms)
{
    if (voro_timer_pending(t))
        voro_timer_del(w, t);
    uint64_t ticks = delay_ms / w->tick_ms + (delay_ms % w->tick_ms != 0);
    if (ticks == 0)
        ticks = 1; /* never fire inside the tick being processed: callbacks may re-arm with 0 */
    if (ticks > UINT64_MAX - w->now_tick)
        ticks = UINT64_MAX - w->now_tick;
    t->expires = w->now_tick + ticks;
    place(w, t);
    w->count++;
}

void voro_timer_del(struct voro_timer_wheel *w, struct voro_timer *t)
{
    if (!voro_timer_pending(t))
        return;
    list_unlink(t);
    w->count--;
}

/* Re-files every timer of one upper-level slot relative to the current tick. */
static void cascade(struct voro_timer_wheel *w, unsigned level, unsigned slot)
{
    struct voro_timer *list = w->slots[level][slot];
    if (!list)
        return;
    /* Move the whole chain onto a local head first so re-filing never revisits it. */
    w->slots[level][slot] = NULL;
    list->prev = (struct voro_timer *)(void *)&list;
    while (list) {
        struct voro_timer *t = list;
        list_unlink(t);
        place(w, t);
    }
}

static int run_tick(struct voro_timer_wheel *w, uint64_t tick)
{
    w->now_tick = tick;
    unsigned top = 0;
    while (top + 1 < VORO_WHEEL_LEVELS && (tick & (((uint64_t)1 << (BITS * (top + 1))) - 1)) == 0)
        top++;
    for (unsigned l = top; l >= 1; l--)
        cascade(w, l, (unsigned)((tick >> (BITS * l)) & MASK));

    struct voro_timer **slot = &w->slots[0][tick & MASK];
    if (!*slot)
        return 0;
    /* Detach to a local head: callbacks may delete other timers of this batch (the
     * pointer-to-pointer links then update the local head) or re-arm themselves. */
    struct voro_timer *batch = *slot;
    *slot = NULL;
    batch->prev = (struct voro_timer *)(void *)&batch;
    int fired = 0;
    while (batch) {
        struct voro_timer *t = batch;
        list_unlink(t);
        w->count--;
        fired++;
        if (t->cb)
            t->cb(t);
    }
    return fired;
}

int voro_timer_wheel_advance(struct voro_timer_wheel *w, uint64_t now_ms)
{
    if (now_ms < w->origin_ms)
        return 0;
    uint64_t target = (now_ms - w->origin_ms) / w->tick_ms;
    int fired = 0;
    while (w->now_tick < target) {
        if (w->count == 0) {
            w->now_tick = target; /* nothing armed: no slot can need work */
            break;
        }
        fired += run_tick(w, w->now_tick + 1);
    }
    return fired;
}

int64_t voro_timer_wheel_next_ms(const struct voro_timer_wheel *w, uint64_t now_ms)
{
    if (w->count == 0)
        return -1;
    uint64_t best = UINT64_MAX;
    for (unsigned l = 0; l < VORO_WHEEL_LEVELS; l++) {
        unsigned shift = BITS * l;
        uint64_t base = (w->now_tick >> shift) + 1;
        /* Level 0 slots hold the expiry tick itself; upper slots are visited (cascaded) at the
         * start of their span, which is never later than any expiry they hold. */
        for (uint64_t k = base; k < base + VORO_WHEEL_SLOTS; k++) {
            if (w->slots[l][k & MASK]) {
                uint64_t tick = k << shift;
                if (tick < best)
                    best = tick;
                break;
            }
        }
    }
    if (best == UINT64_MAX)
        return -1;
    uint64_t at_ms = w->origin_ms + best * w->tick_ms;
    if (at_ms <= now_ms)
        return 0;
    uint64_t d = at_ms - now_ms;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}
