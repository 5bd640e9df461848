/* SPDX-License-Identifier: MIT */
/*
 * Starting the sandbox child without copying the parent's address space.
 *
 * A plain clone3() copies the parent's page tables (dup_mm) and then takes a
 * copy-on-write fault for every page either side writes until the child
 * execs: for a daemon with a few MiB of heap that was about 45% of its CPU
 * (issue 12). Here the child is cloned with CLONE_VM | CLONE_VFORK, as
 * posix_spawn() does: it runs in the parent's memory, on a stack of its own,
 * until its execve() gives it a fresh address space.
 *
 * CLONE_VFORK suspends the calling thread until then, and the child borrows
 * that thread's thread-local storage (errno, the sanitizers' per-thread
 * state), so the calling thread must be one that does nothing else
 * meanwhile: a spawner thread, one per child being set up at once, kept
 * idle between runs. The caller's own thread goes on: it learns the child's
 * pid and pidfd (written by the kernel before the child runs) as soon as
 * the child says it started, writes its uid/gid maps, places it in its
 * cgroup and releases it, as before. The child's stack is the low part of
 * its spawner's stack, so that a sanitizer sees it on a stack it knows.
 *
 * The child must not allocate or take any lock the parent's threads may
 * hold (child.c keeps to that), and it runs with every signal blocked (the
 * spawner's mask) until it has reset the handlers it inherited.
 */
#include <errno.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "sandbox-internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPAWN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SPAWN_ASAN)
#include <sanitizer/asan_interface.h>
/* A child that exec'd left its frames' redzones poisoned in the shadow of a stack we reuse. */
#define UNPOISON_CHILD_STACK(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define UNPOISON_CHILD_STACK(p, n) ((void) (p), (void) (n))
#endif

/* Spawners made at most: one per child in setup at the same moment. */
#define SPAWNERS_MAX 16
/* Each spawner's stack: the child's below, the spawner's own frames (and glibc's TLS) above. */
#define SPAWNER_STACK_SIZE ((size_t) 2 << 20)
#define SPAWNER_OWN_SIZE ((size_t) 512 << 10)

enum { LAUNCH_PENDING = 0, LAUNCH_STARTED = 1, LAUNCH_FAILED = 2 };

typedef struct spawner {
        sbx_spawner *pool;
        pthread_t thread;
        void *stack;
        bool busy;      /* a job is handed over and not finished */
        bool job_ready; /* the spawner has not taken it yet */

        /* The job, written by the caller before job_ready, read by the spawner and its child. */
        struct clone_args ca;
        sbx_netpool *netpool;
        int netns_fd;
        const sbx_child_args *args;
        int pidfd;
        pid_t pid;
        uint32_t launch; /* futex: LAUNCH_* */
        au_error err;    /* when LAUNCH_FAILED */
} spawner;

struct sbx_spawner {
        pthread_mutex_t lock;
        pthread_cond_t wake; /* a spawner has a job, became idle, or must stop */
        spawner *all[SPAWNERS_MAX];
        unsigned n;
        bool stop;
};

/*
 * clone3(ca, size); the child runs fn(arg) on the stack ca names and exits
 * with 127 should fn return. Returns the child's pid or a negative errno
 * (no errno is set: the child shares this thread's). Hand-written because
 * a C function cannot return on a stack it did not start on.
 */
long sbx_spawn_clone3(struct clone_args *ca, size_t size, void (*fn)(void *), void *arg)
        __attribute__((visibility("hidden")));
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl sbx_spawn_clone3\n"
        ".hidden sbx_spawn_clone3\n"
        ".type sbx_spawn_clone3, @function\n"
        ".p2align 4\n"
        "sbx_spawn_clone3:\n"
        "        .cfi_startproc\n"
        "        mov %rdx, %r8\n" /* fn and arg survive the syscall in r8 and r9 */
        "        mov %rcx, %r9\n"
        "        mov $435, %eax\n" /* __NR_clone3 */
        "        syscall\n"
        "        test %rax, %rax\n"
        "        jz 1f\n"
        "        ret\n"
        "1:\n"
        "        .cfi_undefined rip\n"
        "        xor %ebp, %ebp\n"
        "        mov %r9, %rdi\n"
        "        call *%r8\n"
        "        mov $127, %edi\n"
        "        mov $60, %eax\n" /* __NR_exit */
        "        syscall\n"
        "        hlt\n"
        "        .cfi_endproc\n"
        ".size sbx_spawn_clone3, .-sbx_spawn_clone3\n");
#define HAVE_SPAWN_CLONE3 1
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl sbx_spawn_clone3\n"
        ".hidden sbx_spawn_clone3\n"
        ".type sbx_spawn_clone3, %function\n"
        ".p2align 4\n"
        "sbx_spawn_clone3:\n"
        "        mov x8, #435\n" /* __NR_clone3; x2 and x3 survive the svc */
        "        svc #0\n"
        "        cbz x0, 1f\n"
        "        ret\n"
        "1:\n"
        "        mov x29, xzr\n"
        "        mov x30, xzr\n"
        "        mov x0, x3\n"
        "        blr x2\n"
        "        mov x0, #127\n"
        "        mov x8, #93\n" /* __NR_exit */
        "        svc #0\n"
        "        brk #0\n"
        ".size sbx_spawn_clone3, .-sbx_spawn_clone3\n");
#define HAVE_SPAWN_CLONE3 1
#else
#define HAVE_SPAWN_CLONE3 0
#endif

static void futex_wake(uint32_t *addr) {
        syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void futex_wait(uint32_t *addr, uint32_t val) {
        syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* The child's first code, on its spawner's stack: tell the caller it runs, then become the sandbox. */
static void child_entry(void *arg) {
        spawner *s = arg;
        const sbx_child_args *a = s->args;

        /* The futex is private to this address space, which we share until execve. */
        __atomic_store_n(&s->launch, LAUNCH_STARTED, __ATOMIC_RELEASE);
        futex_wake(&s->launch);
        sbx_child_main(a);
}

static void finish_launch(spawner *s, uint32_t how) {
        uint32_t pending = LAUNCH_PENDING;
        __atomic_compare_exchange_n(&s->launch, &pending, how, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        futex_wake(&s->launch);
}

static void *spawner_main(void *arg) {
        spawner *s = arg;
        sbx_spawner *pool = s->pool;

        pthread_mutex_lock(&pool->lock);
        for (;;) {
                while (!s->job_ready && !pool->stop)
                        pthread_cond_wait(&pool->wake, &pool->lock);
                if (pool->stop)
                        break;
                s->job_ready = false;
                pthread_mutex_unlock(&pool->lock);

                /* The child inherits this thread's network namespace: the run's, for the clone only. */
                if (sbx_netpool_enter(s->netpool, s->netns_fd, &s->err) < 0)
                        finish_launch(s, LAUNCH_FAILED);
                else {
                        UNPOISON_CHILD_STACK((void *) (uintptr_t) s->ca.stack, s->ca.stack_size);
                        /* Returns once the child has exec'd or died: its stack is free again. */
                        long pid = sbx_spawn_clone3(&s->ca, sizeof(s->ca), child_entry, s);
                        sbx_netpool_leave(s->netpool);
                        if (pid < 0) {
                                au_error_set(&s->err, (int) -pid, "clone3 into new namespaces");
                                finish_launch(s, LAUNCH_FAILED);
                        } else
                                finish_launch(s, LAUNCH_STARTED); /* killed before it could say so */
                }

                pthread_mutex_lock(&pool->lock);
                s->busy = false;
                pthread_cond_broadcast(&pool->wake);
        }
        pthread_mutex_unlock(&pool->lock);
        return NULL;
}

static int spawner_new(sbx_spawner *pool, spawner **ret, au_error *err) {
        pthread_attr_t attr;
        sigset_t all, old;
        int r;

        spawner *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->pool = pool;
        s->stack = mmap(NULL, SPAWNER_STACK_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        if (s->stack == MAP_FAILED) {
                r = au_error_set(err, errno, "allocate a spawner stack");
                free(s);
                return r;
        }
        /* A guard page under the child's stack. */
        mprotect(s->stack, (size_t) sysconf(_SC_PAGESIZE), PROT_NONE);

        /* Every signal blocked in the spawner, and so in its child until it has reset them. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_attr_init(&attr);
        if (r == 0)
                r = -pthread_attr_setstack(&attr, s->stack, SPAWNER_STACK_SIZE);
        if (r == 0)
                r = -pthread_create(&s->thread, &attr, spawner_main, s);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                munmap(s->stack, SPAWNER_STACK_SIZE);
                free(s);
                return au_error_set(err, -r, "start a spawner thread");
        }
        *ret = s;
        return 0;
}

int sbx_spawner_new(sbx_spawner **ret, au_error *err) {
        if (!HAVE_SPAWN_CLONE3) {
                *ret = NULL; /* sbx_spawn() then clones the classic way */
                return 0;
        }
        sbx_spawner *pool = calloc(1, sizeof(*pool));
        if (!pool)
                return au_error_set(err, ENOMEM, "allocate the spawner pool");
        pthread_mutex_init(&pool->lock, NULL);
        pthread_cond_init(&pool->wake, NULL);
        *ret = pool;
        return 0;
}

sbx_spawner *sbx_spawner_free(sbx_spawner *pool) {
        if (!pool)
                return NULL;
        pthread_mutex_lock(&pool->lock);
        pool->stop = true;
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
        for (unsigned i = 0; i < pool->n; i++) {
                pthread_join(pool->all[i]->thread, NULL);
                munmap(pool->all[i]->stack, SPAWNER_STACK_SIZE);
                free(pool->all[i]);
        }
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->lock);
        free(pool);
        return NULL;
}

/* Without a spawner (an architecture we have no clone3 trampoline for): a copying clone3. */
static int spawn_classic(sbx_netpool *netpool, int netns_fd, const struct clone_args *ca_in,
                         const sbx_child_args *args, pid_t *ret_pid, int *ret_pidfd, au_error *err) {
        struct clone_args ca = *ca_in;
        int pidfd = -1, r;

        ca.pidfd = (uint64_t) (uintptr_t) &pidfd;
        if ((r = sbx_netpool_enter(netpool, netns_fd, err)) < 0)
                return r;
        pid_t pid = (pid_t) syscall(SYS_clone3, &ca, sizeof(ca));
        int clone_errno = errno;
        if (pid == 0)
                sbx_child_main(args);
        sbx_netpool_leave(netpool);
        if (pid < 0)
                return au_error_set(err, clone_errno, "clone3 into new namespaces");
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}

int sbx_spawn(sbx_spawner *pool, sbx_netpool *netpool, int netns_fd, const struct clone_args *ca,
              const sbx_child_args *args, pid_t *ret_pid, int *ret_pidfd, au_error *err) {
        spawner *s = NULL;
        int r;

        if (!pool)
                return spawn_classic(netpool, netns_fd, ca, args, ret_pid, ret_pidfd, err);

        pthread_mutex_lock(&pool->lock);
        for (;;) {
                for (unsigned i = 0; i < pool->n && !s; i++)
                        if (!pool->all[i]->busy)
                                s = pool->all[i];
                if (s)
                        break;
                if (pool->n < SPAWNERS_MAX) {
                        if ((r = spawner_new(pool, &s, err)) < 0) {
                                pthread_mutex_unlock(&pool->lock);
                                return r;
                        }
                        pool->all[pool->n++] = s;
                        break;
                }
                pthread_cond_wait(&pool->wake, &pool->lock);
        }
        s->busy = true;
        s->ca = *ca;
        s->ca.flags |= CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_PARENT_SETTID;
        s->ca.pidfd = (uint64_t) (uintptr_t) &s->pidfd;
        s->ca.parent_tid = (uint64_t) (uintptr_t) &s->pid;
        /* The child's stack: everything below the spawner's own part, 16-byte aligned at the top. */
        s->ca.stack = (uint64_t) (uintptr_t) s->stack;
        s->ca.stack_size = (SPAWNER_STACK_SIZE - SPAWNER_OWN_SIZE) & ~(size_t) 15;
        s->netpool = netpool;
        s->netns_fd = netns_fd;
        s->args = args;
        s->pid = 0;
        s->pidfd = -1;
        s->err = (au_error){};
        __atomic_store_n(&s->launch, LAUNCH_PENDING, __ATOMIC_RELAXED);
        s->job_ready = true;
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);

        uint32_t launch;
        while ((launch = __atomic_load_n(&s->launch, __ATOMIC_ACQUIRE)) == LAUNCH_PENDING)
                futex_wait(&s->launch, LAUNCH_PENDING);
        if (launch == LAUNCH_FAILED) {
                /* s is ours to read until the next sbx_spawn(): calls do not overlap. */
                if (err)
                        *err = s->err;
                return -(s->err.code ? abs(s->err.code) : EIO);
        }
        /* The kernel stored both before the child first ran. */
        *ret_pid = s->pid;
        *ret_pidfd = s->pidfd;
        return 0;
}
