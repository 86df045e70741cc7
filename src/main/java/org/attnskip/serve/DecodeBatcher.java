package org.attnskip.serve;

import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.KvBatch;
import org.attnskip.runtime.KvCache;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One thread that runs the decode steps of many completions together: each step feeds one token
 * per running completion in a single run of the graph. Completions join after their prefill (done
 * on their own worker thread) and leave when they end; at most {@code maxBatch} run at once and
 * the others wait for a free row.
 */
final class DecodeBatcher implements AutoCloseable {
    private record Joining(CompletionProgress progress, KvCache cache, int token, CompletableFuture<Void> done) {
    }

    /** A completion in the batch and the token it feeds at the next step. */
    private static final class Running {
        final Joining joined;
        int token;

        Running(Joining joined) {
            this.joined = joined;
            this.token = joined.token();
        }
    }

    private final DecoderSession session;
    private final int maxBatch;
    private final ServerMetrics metrics;
    private final BlockingQueue<Joining> waiting = new LinkedBlockingQueue<>();
    private final Thread thread;
    private volatile boolean closed;

    DecodeBatcher(DecoderSession session, int maxBatch, ServerMetrics metrics) {
        if (maxBatch < 2) {
            throw new IllegalArgumentException("a batcher needs room for at least 2 rows; it was given " + maxBatch);
        }
        this.session = session;
        this.maxBatch = maxBatch;
        this.metrics = metrics;
        this.thread = new Thread(this::loop, "attnskip-decode-batcher");
        thread.setDaemon(true);
        thread.start();
    }

    /** Completions waiting for a row. */
    int waiting() {
        return waiting.size();
    }

    /**
     * Queues a prefilled completion to be decoded, in steps shared with the others, until its
     * progress ends it; the returned future completes then. Takes ownership of the cache. Until the
     * future completes, the progress belongs to the decode loop.
     */
    CompletableFuture<Void> start(CompletionProgress progress, KvCache cache, int firstToken) {
        Joining joining = new Joining(progress, cache, firstToken, new CompletableFuture<>());
        if (closed) {
            cache.close();
            throw new IllegalStateException("the server is shutting down");
        }
        waiting.add(joining);
        if (closed && waiting.remove(joining)) { // the loop may have ended before the add
            cache.close();
            throw new IllegalStateException("the server is shutting down");
        }
        return joining.done();
    }

    /** Decodes one prefilled completion, blocking the calling worker until it ends. */
    void decode(CompletionProgress progress, KvCache cache, int firstToken) {
        awaitAll(List.of(progress), List.of(start(progress, cache, firstToken)));
    }

    /**
     * Blocks until every started completion has ended; throws the first failure after all have.
     * When the worker is interrupted, each completion is asked to end at its next step, and still
     * waited for (the loop completes every future it holds, also when it stops).
     */
    void awaitAll(List<CompletionProgress> progresses, List<CompletableFuture<Void>> done) {
        boolean interrupted = false;
        RuntimeException failed = null;
        for (int i = 0; i < done.size(); i++) {
            try {
                if (interrupted) {
                    done.get(i).join();
                } else {
                    done.get(i).get();
                }
            } catch (InterruptedException e) {
                interrupted = true;
                progresses.forEach(CompletionProgress::abandon);
                i--; // wait for this one again, uninterruptibly
            } catch (ExecutionException | java.util.concurrent.CompletionException e) {
                failed = failed != null ? failed : failure(e.getCause());
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (failed != null) {
            throw failed;
        }
    }

    /** Ends started completions at their next step and waits until the loop has let go of them. */
    void abandonAll(List<CompletionProgress> progresses, List<CompletableFuture<Void>> done) {
        progresses.forEach(CompletionProgress::abandon);
        for (CompletableFuture<Void> d : done) {
            try {
                d.join();
            } catch (RuntimeException ignored) {
                // its failure is already being reported by the caller
            }
        }
    }

    private static RuntimeException failure(Throwable cause) {
        return cause instanceof RuntimeException r ? r : new IllegalStateException(String.valueOf(cause.getMessage()), cause);
    }

    private void loop() {
        KvBatch batch = new KvBatch(session);
        Map<KvBatch.Row, Running> running = new IdentityHashMap<>();
        try {
            while (!closed) {
                admit(batch, running);
                if (batch.size() == 0) {
                    continue;
                }
                List<KvBatch.Row> rows = new ArrayList<>(batch.rows());
                int[] tokens = new int[rows.size()];
                for (int b = 0; b < rows.size(); b++) {
                    tokens[b] = running.get(rows.get(b)).token;
                }
                float[][] logits;
                try {
                    logits = batch.step(tokens);
                } catch (RuntimeException | OutOfMemoryError e) {
                    // A failed run leaves the shared cache unusable: fail every completion in it, start afresh.
                    running.values().forEach(r -> r.joined.done().completeExceptionally(e));
                    running.clear();
                    batch.close();
                    batch = new KvBatch(session);
                    continue;
                }
                metrics.decodeBatchSize.observe(rows.size());
                for (int b = 0; b < rows.size(); b++) {
                    Running r = running.get(rows.get(b));
                    int next;
                    try {
                        next = r.joined.progress().advance(logits[b]);
                    } catch (RuntimeException | OutOfMemoryError e) {
                        batch.leave(rows.get(b));
                        running.remove(rows.get(b));
                        r.joined.done().completeExceptionally(e);
                        continue;
                    }
                    if (next < 0) {
                        batch.leave(rows.get(b));
                        running.remove(rows.get(b));
                        r.joined.done().complete(null);
                    } else {
                        r.token = next;
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            closed = true; // also when the loop died of an unexpected error: decode() then refuses new work
            IllegalStateException stopped = new IllegalStateException("the decode loop stopped");
            running.values().forEach(r -> r.joined.done().completeExceptionally(stopped));
            batch.close();
            for (Joining j; (j = waiting.poll()) != null; ) {
                j.cache().close();
                j.done().completeExceptionally(stopped);
            }
        }
    }

    /** Takes waiting completions into free rows; when nothing runs, waits briefly for one. */
    private void admit(KvBatch batch, Map<KvBatch.Row, Running> running) throws InterruptedException {
        while (batch.size() < maxBatch) {
            Joining j = batch.size() == 0 ? waiting.poll(50, TimeUnit.MILLISECONDS) : waiting.poll();
            if (j == null) {
                return;
            }
            running.put(batch.join(j.cache()), new Running(j));
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
