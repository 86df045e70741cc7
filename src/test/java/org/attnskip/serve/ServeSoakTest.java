package org.attnskip.serve;

import org.attnskip.StoriesExport;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bounded soak of the server on stories260K (bench/soak.sh is the long one): a mixed load of
 * greedy requests, streams, dropped streams and malformed bodies at concurrency 16. Every text equals
 * the generation loop's alone, every malformed body gets a 4xx, the KV cache in use returns to 0 and
 * the thread count to within 10% of its level after the same load as a warm-up.
 */
class ServeSoakTest {
    @TempDir
    Path tmp;

    @Test
    void mixedLoadLeavesNothingBehind() throws Exception {
        Path dir = StoriesExport.export(tmp, "stories260K");
        Map<String, String> expected = SoakRun.expectedTexts(dir);
        try (ServedModel served = ServedModel.open(dir, null, Device.CPU);
             CompletionServer server = new CompletionServer(served, new ServeLimits(1 << 16, 64, 64, 4, 64, 4))) {
            int port = server.start("127.0.0.1", 0, new HttpPolicy(null, List.of(), 5000, 256));
            SoakRun.Report warmUp = SoakRun.run("127.0.0.1", port, expected, 200, 16, 1); // the same load, so pools are grown
            assertEquals(List.of(), warmUp.problems());
            awaitIdle(server);
            int threadsAfterWarmUp = serverSideThreads();

            SoakRun.Report report = SoakRun.run("127.0.0.1", port, expected, 200, 16, 2);
            System.out.println("ServeSoakTest: " + report);
            assertEquals(List.of(), report.problems());
            assertEquals(0, report.wrongTexts());
            assertEquals(0, report.malformedNot4xx());
            assertTrue(report.greedy() > 0 && report.streamed() > 0 && report.dropped() > 0 && report.malformed() > 0,
                    report.toString());
            awaitIdle(server);
            assertEquals(0, server.metrics().kvBytesInUse());
            int threads = serverSideThreads();
            System.out.println("ServeSoakTest: threads after warm-up " + threadsAfterWarmUp + ", after the run " + threads);
            assertTrue(threads <= threadsAfterWarmUp * 1.1 + 1, "threads " + threadsAfterWarmUp + " -> " + threads);
        }
    }

    /**
     * Live threads other than the load client's own: each run makes a new java.net.http client whose
     * selector thread lives until the client is collected, and a fixed pool of request threads.
     */
    private static int serverSideThreads() {
        return (int) Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && !t.getName().startsWith("HttpClient-") && !t.getName().startsWith("pool-"))
                .count();
    }

    /** Waits (bounded) until no request holds KV cache: dropped streams are let go at their next step. */
    private static void awaitIdle(CompletionServer server) throws InterruptedException {
        for (int i = 0; i < 2000 && server.metrics().kvBytesInUse() != 0; i++) {
            Thread.sleep(10);
        }
    }
}
