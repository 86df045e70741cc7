package org.attnskip.serve;

import org.attnskip.ChildJvm;
import org.attnskip.StoriesExport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** 'attnskip serve' in its own JVM: SIGTERM lets a running stream finish, then the process exits 0. */
class ServeSigtermTest {
    @TempDir
    Path tmp;

    @Test
    void sigtermDrainsThenExitsZero() throws Exception {
        Path dir = StoriesExport.export(tmp, "m");
        List<String> cmd = ChildJvm.command(tmp, "serve", dir.toString(), "--port", "0", "--device", "cpu", "--max-batch", "1");
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8));
            int port = -1;
            Pattern serving = Pattern.compile("serving .* on http://127\\.0\\.0\\.1:(\\d+)");
            List<String> said = new ArrayList<>();
            for (String line; port < 0 && (line = err.readLine()) != null; ) {
                said.add(line);
                Matcher m = serving.matcher(line);
                if (m.find()) {
                    port = Integer.parseInt(m.group(1));
                }
            }
            assertTrue(port > 0, "the server said where it listens: " + said);
            List<String> stderrTail = new ArrayList<>();
            CompletableFuture.runAsync(() -> err.lines().forEach(stderrTail::add));

            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            HttpRequest stream = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\":\"Once upon a time\",\"max_tokens\":250,\"temperature\":0,\"stream\":true}")).build();
            HttpResponse<Stream<String>> r = http.send(stream, HttpResponse.BodyHandlers.ofLines());
            assertEquals(200, r.statusCode());
            var lines = r.body().iterator();
            List<String> events = new ArrayList<>();
            events.add(lines.next()); // the first event is out: generation is running
            p.destroy(); // SIGTERM
            lines.forEachRemaining(events::add);
            assertEquals("data: [DONE]", events.stream().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElse(""),
                    "the running stream was allowed to finish");
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "exited");
            assertEquals(0, p.exitValue(), String.join("\n", stderrTail));
        } finally {
            p.destroyForcibly();
        }
    }
}
