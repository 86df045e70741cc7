package org.attnskip;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bench/run.sh end to end on a tiny synthetic model and its drop rewrite: it runs and prints both
 * tables well formed. Timings are not checked (they are whatever this machine gives); the bytes are.
 */
class BenchScriptTest {
    private static final Pattern THROUGHPUT_CELL = Pattern.compile("[0-9,]+ / [0-9,]+ \\([0-9]+\\.[0-9]{3}\\)");
    private static final Pattern MS = Pattern.compile("[0-9]+\\.[0-9]{4} ms");

    @Test
    void printsThroughputAndFloorTables() throws IOException, InterruptedException {
        Path script = Path.of("bench/run.sh").toAbsolutePath();
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString());
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // The class path goes by environment: ONNX Runtime's native start-up crashed (SIGSEGV) when the
        // JVM's command line was a few thousand characters long.
        pb.environment().put("CLASSPATH", System.getProperty("java.class.path"));
        pb.environment().put("ATTNSKIP", java + " org.attnskip.cli.Main");
        pb.environment().put("SYNTH", "layers=2,hidden=32,heads=2,ffn=64,vocab=64,seq=96");
        pb.environment().put("BENCH_OPTS", "--prefill 8,16 --decode 16,32 --steps 2 --repeats 1 --warmup 0 --bandwidth-mb 4 --quiet");
        Path err = Files.createTempFile("bench", ".err");
        pb.redirectError(err.toFile());
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        String stderr = Files.readString(err);
        Files.delete(err);
        assertEquals(0, p.exitValue(), stderr);

        List<String> lines = Arrays.asList(out.split("\n"));
        List<String[]> throughput = table(lines, "| variant / baseline |");
        assertEquals(List.of("variant / baseline", "prefill 8 tok/s", "prefill 16 tok/s", "decode @16 tok/s", "decode @32 tok/s"),
                List.of(throughput.get(0)));
        assertEquals(List.of("synthetic (again) / synthetic", "synthetic-fused / synthetic", "synthetic-drop05 / synthetic",
                "synthetic-fused-drop05 / synthetic"), throughput.subList(1, throughput.size()).stream().map(r -> r[0]).toList());
        for (String[] row : throughput.subList(1, throughput.size())) {
            for (int c = 1; c < row.length; c++) {
                assertTrue(THROUGHPUT_CELL.matcher(row[c]).matches(), row[c]);
            }
        }

        List<String[]> floors = table(lines, "| model |");
        assertEquals(9, floors.get(0).length);
        assertEquals(List.of("synthetic", "synthetic (again)", "synthetic-fused", "synthetic-drop05", "synthetic-fused-drop05"),
                floors.subList(1, floors.size()).stream().map(r -> r[0]).toList());
        // KV bytes per position: 2 layers x (K + V) x 32 floats; drop above 0.5 keeps layer 0's only.
        assertEquals(List.of("512 B", "512 B", "512 B", "256 B", "256 B"),
                floors.subList(1, floors.size()).stream().map(r -> r[2]).toList());
        for (String[] row : floors.subList(1, floors.size())) {
            assertTrue(MS.matcher(row[3]).matches() && MS.matcher(row[4]).matches(), String.join("|", row));
        }
        assertTrue(out.contains("read bandwidth "), out);
    }

    /** The rows of the Markdown table whose header starts so, header first, separator left out. */
    private static List<String[]> table(List<String> lines, String headerStart) {
        int at = -1;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith(headerStart)) {
                at = i;
                break;
            }
        }
        assertTrue(at >= 0, "no table starting " + headerStart + " in\n" + String.join("\n", lines));
        assertTrue(lines.get(at + 1).matches("\\|( --- \\|)+"), lines.get(at + 1));
        List<String[]> rows = new java.util.ArrayList<>();
        rows.add(cells(lines.get(at)));
        for (int i = at + 2; i < lines.size() && lines.get(i).startsWith("|"); i++) {
            rows.add(cells(lines.get(i)));
        }
        return rows;
    }

    private static String[] cells(String line) {
        String inner = line.substring(1, line.length() - 1);
        return Arrays.stream(inner.split("\\|")).map(String::trim).toArray(String[]::new);
    }
}
