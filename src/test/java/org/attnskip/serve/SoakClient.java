package org.attnskip.serve;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The soak of bench/soak.sh against a running server (not a test):
 * {@code java -cp target/test-classes:target/attnskip.jar org.attnskip.serve.SoakClient PORT MODEL_DIR REQUESTS CONCURRENCY SERVER_PID}.
 * Warms up with the same load, then prints the run's report, the KV bytes in use once the
 * server is idle, and the server's resident memory and thread count after warm-up and after the run.
 * Exits 1 when a text is wrong, a malformed body got no 4xx, or KV bytes stay in use.
 */
public final class SoakClient {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        Path model = Path.of(args[1]);
        int requests = Integer.parseInt(args[2]);
        int concurrency = Integer.parseInt(args[3]);
        long pid = Long.parseLong(args[4]);
        Map<String, String> expected = SoakRun.expectedTexts(model);
        // the warm-up is the run itself once over, so that heap and thread pools have reached their working size
        SoakRun.Report warmUp = SoakRun.run("127.0.0.1", port, expected, requests, concurrency, 1);
        long kv = awaitIdle(port);
        String before = status(pid);
        System.out.println("warm-up: " + warmUp + "; kv bytes in use " + kv + "; server " + before);
        SoakRun.Report report = SoakRun.run("127.0.0.1", port, expected, requests, concurrency, 2);
        kv = awaitIdle(port);
        String after = status(pid);
        System.out.println("run: " + report);
        System.out.println("after: kv bytes in use " + kv + "; server " + after + " (after warm-up: " + before + ")");
        report.problems().stream().limit(20).forEach(p -> System.out.println("  problem: " + p));
        boolean ok = report.wrongTexts() == 0 && report.malformedNot4xx() == 0 && report.otherFailures() == 0 && kv == 0;
        System.exit(ok ? 0 : 1);
    }

    /** Polls /metrics until the KV bytes in use are 0 (at most 20 s); returns the last value. */
    private static long awaitIdle(int port) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long kv = -1;
        for (int i = 0; i < 200 && kv != 0; i++) {
            String metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            for (String line : metrics.split("\n")) {
                if (line.startsWith("attnskip_kv_cache_bytes ")) {
                    kv = (long) Double.parseDouble(line.substring(line.indexOf(' ') + 1));
                }
            }
            if (kv != 0) {
                Thread.sleep(100);
            }
        }
        return kv;
    }

    /** VmRSS and Threads of a Linux process. */
    private static String status(long pid) throws Exception {
        StringBuilder out = new StringBuilder();
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:") || line.startsWith("Threads:")) {
                out.append(line.replaceAll("\\s+", " ")).append("; ");
            }
        }
        return out.toString().trim();
    }
}
