package org.attnskip.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;

/**
 * The machine's memory read bandwidth as a decode step sees it: each of {@code threads} threads sums
 * its own array, much larger than the caches, and the figure is the bytes read over the slowest
 * thread's time, best of several passes. Hand-written because it is twenty lines and no library
 * measures this from the JVM; the sum uses four independent accumulators so that the adds keep
 * up with the loads and the loop waits on memory, not on its own dependency chain.
 */
public final class MemoryBandwidth {
    private MemoryBandwidth() {
    }

    /** Read bandwidth in bytes per second. */
    public static double measure(int threads, long bytesPerThread, int passes) {
        int length = Math.toIntExact(Math.max(1024, bytesPerThread / Long.BYTES));
        List<long[]> arrays = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            long[] a = new long[length];
            java.util.Arrays.fill(a, t + 1); // touch every page before timing
            arrays.add(a);
        }
        double best = 0;
        long[] sink = new long[threads];
        for (int pass = 0; pass < passes + 1; pass++) { // the first pass warms the JIT and is not counted
            long nanos = timeOnePass(arrays, sink);
            if (pass > 0) {
                best = Math.max(best, (double) threads * length * Long.BYTES / (nanos / 1e9));
            }
        }
        long check = 0;
        for (int t = 0; t < threads; t++) {
            check += sink[t];
        }
        if (check == 42) { // keeps the sums alive; they are never 42
            System.err.print("");
        }
        return best;
    }

    private static long timeOnePass(List<long[]> arrays, long[] sink) {
        int threads = arrays.size();
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        long[] starts = new long[threads];
        long[] ends = new long[threads];
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread w = new Thread(() -> {
                await(start);
                // each worker reads its own clock: under load the releasing thread may run after they finish
                starts[id] = System.nanoTime();
                sink[id] = sum(arrays.get(id));
                ends[id] = System.nanoTime();
            });
            w.start();
            workers.add(w);
        }
        await(start);
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while measuring bandwidth", e);
            }
        }
        long first = Long.MAX_VALUE;
        long last = Long.MIN_VALUE;
        for (int t = 0; t < threads; t++) {
            first = Math.min(first, starts[t]);
            last = Math.max(last, ends[t]);
        }
        return Math.max(1, last - first);
    }

    static long sum(long[] a) {
        long s0 = 0;
        long s1 = 0;
        long s2 = 0;
        long s3 = 0;
        int i = 0;
        for (; i + 3 < a.length; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        for (; i < a.length; i++) {
            s0 += a[i];
        }
        return s0 + s1 + s2 + s3;
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await();
        } catch (Exception e) {
            throw new IllegalStateException("bandwidth threads did not start together", e);
        }
    }
}
