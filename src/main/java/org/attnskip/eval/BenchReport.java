package org.attnskip.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The Markdown tables of a benchmark run: throughput of each variant against the baseline it was
 * interleaved with, and each model's decode time against the memory-bound floor.
 */
public final class BenchReport {
    /** One variant timed in one interleaved run with the baseline. */
    public record Pair(String baseline, String variant, LatencyResult result) {
    }

    /** A model's floor, and the decode medians measured for it (ms per step, by context; NaN where not measured). */
    public record FloorRow(String model, DecodeFloor floor, List<Double> measuredMs) {
    }

    private BenchReport() {
    }

    /**
     * One row per variant; each cell is the variant's tokens per second over the baseline's, both
     * from the same interleaved run, and the ratio of their median times (variant / baseline: below
     * 1 is faster).
     */
    public static String throughput(List<Integer> prefillLengths, List<Integer> decodeContexts, List<Pair> pairs) {
        StringBuilder md = new StringBuilder();
        List<String> header = new ArrayList<>(List.of("variant / baseline"));
        prefillLengths.forEach(n -> header.add("prefill " + n + " tok/s"));
        decodeContexts.forEach(n -> header.add("decode @" + n + " tok/s"));
        row(md, header);
        row(md, header.stream().map(h -> "---").toList());
        for (Pair p : pairs) {
            List<String> cells = new ArrayList<>(List.of(p.variant() + " / " + p.baseline()));
            for (int n : prefillLengths) {
                cells.add(cell(find(p.result().prefill(), n)));
            }
            for (int n : decodeContexts) {
                cells.add(cell(find(p.result().decode(), n)));
            }
            row(md, cells);
        }
        return md.toString();
    }

    /** Each model's decode time against (weights + KV at the context) / bandwidth. */
    public static String floors(List<Integer> decodeContexts, double bytesPerSecond, List<FloorRow> rows) {
        StringBuilder md = new StringBuilder();
        List<String> header = new ArrayList<>(List.of("model", "weights read per step", "KV per position"));
        for (int n : decodeContexts) {
            header.add("floor @" + n);
            header.add("measured @" + n);
            header.add("measured / floor @" + n);
        }
        row(md, header);
        row(md, header.stream().map(h -> "---").toList());
        for (FloorRow r : rows) {
            List<String> cells = new ArrayList<>(List.of(r.model(), mb(r.floor().weightBytes()),
                    String.format(Locale.ROOT, "%,d B", r.floor().kvBytesPerToken())));
            for (int i = 0; i < decodeContexts.size(); i++) {
                double floor = r.floor().floorMs(decodeContexts.get(i), bytesPerSecond);
                double measured = r.measuredMs().get(i);
                cells.add(String.format(Locale.ROOT, "%.4f ms", floor));
                cells.add(Double.isNaN(measured) ? "-" : String.format(Locale.ROOT, "%.4f ms", measured));
                cells.add(Double.isNaN(measured) ? "-" : String.format(Locale.ROOT, "%.2f", measured / floor));
            }
            row(md, cells);
        }
        return md.toString();
    }

    /** The median decode time of the baseline (or the variant) of a pair at a context, NaN when not measured. */
    public static double decodeMs(LatencyResult result, int context, boolean variant) {
        LatencyPoint p = find(result.decode(), context);
        return p == null ? Double.NaN : (variant ? p.variant() : p.baseline()).medianMs();
    }

    private static LatencyPoint find(List<LatencyPoint> points, int tokens) {
        return points.stream().filter(p -> p.tokens() == tokens).findFirst().orElse(null);
    }

    private static String cell(LatencyPoint p) {
        if (p == null) {
            return "-"; // more positions than the models have
        }
        return String.format(Locale.ROOT, "%,.0f / %,.0f (%.3f)", p.variantTokensPerSecond(), p.baselineTokensPerSecond(),
                p.ratio());
    }

    private static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.2f MB", bytes / 1e6);
    }

    private static void row(StringBuilder md, List<String> cells) {
        md.append("| ").append(String.join(" | ", cells)).append(" |\n");
    }
}
