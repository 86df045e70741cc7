package org.attnskip.serve;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The fixed pool of generation workers: requests beyond the workers wait in a bounded queue and
 * are turned away with 429 when it is full (503 while the server drains).
 */
final class Workers {
    private final ServeLimits limits;
    private final BooleanSupplier draining;
    private final ThreadPoolExecutor pool;

    Workers(ServeLimits limits, BooleanSupplier draining) {
        this.limits = limits;
        this.draining = draining;
        this.pool = new ThreadPoolExecutor(limits.maxConcurrency(), limits.maxConcurrency(), 0, TimeUnit.SECONDS,
                limits.queueCapacity() == 0 ? new SynchronousQueue<>() : new ArrayBlockingQueue<>(limits.queueCapacity()),
                r -> {
                    Thread t = new Thread(r, "attnskip-worker");
                    t.setDaemon(true);
                    return t;
                });
    }

    /** Requests waiting for a worker. */
    int queued() {
        return pool.getQueue().size();
    }

    <T> Future<T> submit(Callable<T> job) {
        try {
            return pool.submit(job);
        } catch (RejectedExecutionException e) {
            boolean stopping = draining.getAsBoolean();
            throw new ApiError(stopping ? 503 : 429, stopping ? "server_error" : "rate_limit_exceeded", null,
                    stopping ? "shutting_down" : "queue_full", stopping ? "the server is shutting down"
                    : "the server is busy: " + limits.maxConcurrency() + " requests are running and "
                    + limits.queueCapacity() + " waiting; retry later");
        }
    }

    /** Takes no new work and waits up to the given time for running and queued work to end. */
    void finish(long graceSeconds) throws InterruptedException {
        pool.shutdown();
        pool.awaitTermination(graceSeconds, TimeUnit.SECONDS);
    }

    /** Interrupts whatever still runs. */
    void stopNow() {
        pool.shutdownNow();
    }
}
