package org.attnskip.eval;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's peak resident memory: VmHWM from /proc/self/status on Linux (it counts ONNX
 * Runtime's native allocations too), or, elsewhere, the JVM's committed heap + non-heap from the
 * MemoryMXBean (which misses native memory). {@code source} says which one was read.
 */
public record PeakMemory(long bytes, String source) {
    public static PeakMemory read() {
        Path status = Path.of("/proc/self/status");
        if (Files.isReadable(status)) {
            try {
                for (String line : Files.readAllLines(status)) {
                    if (line.startsWith("VmHWM:")) {
                        String[] parts = line.substring(6).trim().split("\\s+");
                        return new PeakMemory(Long.parseLong(parts[0]) * 1024, "/proc/self/status VmHWM (whole process)");
                    }
                }
            } catch (IOException | NumberFormatException ignored) {
                // fall through to the JVM's view
            }
        }
        var bean = ManagementFactory.getMemoryMXBean();
        MemoryUsage heap = bean.getHeapMemoryUsage();
        MemoryUsage nonHeap = bean.getNonHeapMemoryUsage();
        return new PeakMemory(heap.getCommitted() + nonHeap.getCommitted(), "MemoryMXBean committed heap + non-heap (JVM only)");
    }
}
