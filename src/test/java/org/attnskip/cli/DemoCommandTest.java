package org.attnskip.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.CliRun;
import org.attnskip.HeadlessChromium;
import org.attnskip.eval.ShippedDemoModel;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's main command end to end, on the trained model packed into the jar (no ../shared
 * needed), with fewer documents, items, thresholds and repetitions; run once for all the checks.
 */
class DemoCommandTest {
    /** Curve thresholds given; the headline 0.6 joins them. */
    private static final String CURVE = "0,0.9";
    private static final List<String> QUALITY_FLAGS = List.of("--device", "cpu", "--quiet", "--max-docs", "3", "--max-items", "2",
            "--bootstrap", "100", "--text", "eval/stories.txt", "--tasks", "eval/tasks");

    @TempDir
    static Path tmp;
    static Path out;
    static CliRun demo;
    static JsonNode report;

    @BeforeAll
    static void runDemo() throws Exception {
        out = tmp.resolve("demo");
        List<String> args = new ArrayList<>(List.of("demo", "--report", out.toString(), "--thresholds", CURVE,
                "--repeats", "1", "--warmup", "0", "--prefill-lengths", "64", "--decode-contexts", "128"));
        args.addAll(QUALITY_FLAGS);
        demo = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, demo.code(), demo.err());
        report = new ObjectMapper().readTree(out.resolve("report.json").toFile());
    }

    @Test
    void summaryOpensTheOutputAndEveryReportFile() throws Exception {
        List<String> printed = demo.out().lines().toList();
        assertEquals(5, printed.size(), demo.out());
        List<String> labels = List.of("rewritten", "quality", "time saved", "KV memory", "report");
        for (int i = 0; i < 5; i++) {
            assertTrue(printed.get(i).startsWith(labels.get(i)), printed.get(i));
            assertEquals(printed.get(i), report.get("summary").get(i).asText());
        }
        assertTrue(printed.get(0).contains("drop 0.6 removes attention in layers 8-11 of 12"), printed.get(0));
        JsonNode floor = report.at("/latency_drop/points/1");
        assertTrue(printed.get(2).endsWith(String.format(java.util.Locale.ROOT, "identical graphs: x%.3f, x%.3f (noise floor)",
                floor.at("/latency/decode/0/ratio").asDouble(), floor.at("/latency/prefill/0/ratio").asDouble())), printed.get(2));
        assertTrue(printed.get(4).endsWith(out.resolve("report.html").toString()), printed.get(4));
        String md = Files.readString(out.resolve("report.md"));
        String html = Files.readString(out.resolve("report.html"));
        // the summary comes before the first table in both renderings
        assertTrue(md.indexOf(printed.get(1)) > 0 && md.indexOf(printed.get(1)) < md.indexOf("## "), md);
        int inHtml = html.indexOf(printed.get(2).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"));
        assertTrue(inHtml > 0 && inHtml < html.indexOf("<table"), "summary not first in report.html");
        for (String file : List.of("demo-quality.png", "demo-latency.png")) {
            assertTrue(Files.size(out.resolve(file)) > 0, file);
        }
    }

    @Test
    void qualityComesFromTheTrainedModelAndFollowsThePapersCurve() {
        for (String mode : List.of("drop", "freeze")) {
            JsonNode points = report.at("/quality_" + mode + "/points");
            assertEquals(List.of(0.0, 0.6, 0.9), thresholds(points), mode);
            JsonNode all = points.get(0);
            JsonNode headline = points.get(1);
            JsonNode top = points.get(2);
            // 12 layers: f = 0.6 touches k = ceil(7.2) = 8 and up, f = 0.9 touches 11
            assertEquals("[8,9,10,11]", headline.get("layers").toString(), mode);
            assertEquals("[11]", top.get("layers").toString(), mode);
            double baselinePpl = headline.at("/text/baseline_perplexity/value").asDouble();
            // a trained model: the random-weight demo scored above 1000 here
            assertTrue(baselinePpl > 1 && baselinePpl < 20, mode + " baseline perplexity " + baselinePpl);
            double a = top1(all);
            double h = top1(headline);
            double t = top1(top);
            // safe at the top, collapse below: agreement falls as more layers lose attention
            assertTrue(t > h && h > a, mode + ": top-1 " + a + ", " + h + ", " + t);
            assertEquals(3, headline.at("/tasks").size());
        }
        // freeze keeps more than drop at the same threshold
        assertTrue(top1(report.at("/quality_freeze/points/1")) > top1(report.at("/quality_drop/points/1")));
        assertTrue(report.get("quality_model").asText().startsWith("stories-deep12"));
    }

    @Test
    void latencyComesFromTheSyntheticShapeWithTheKvOfEightLayers() {
        JsonNode drop = report.at("/latency_drop/points/0");
        assertEquals(0.6, drop.get("threshold").asDouble());
        JsonNode latency = drop.get("latency");
        assertEquals(64, latency.at("/prefill/0/tokens").asInt());
        assertEquals(128, latency.at("/decode/0/tokens").asInt());
        assertTrue(latency.at("/prefill/0/ratio").asDouble() > 0 && latency.at("/decode/0/ratio").asDouble() > 0);
        long base = latency.get("baseline_kv_bytes").asLong();
        // the largest context: 128 positions and the 4 timed decode steps after them
        assertEquals(132, latency.get("largest_context").asInt());
        // synthetic 12 layers, 4 KV heads of 64 dims, fp32, K and V
        assertEquals(12L * 2 * 4 * 64 * 4 * 132, base);
        assertEquals(base * 8, latency.get("variant_kv_bytes").asLong() * 12);
        // the noise-floor point: the identical graph keeps every cache
        JsonNode same = report.at("/latency_drop/points/1");
        assertEquals(1.0, same.get("threshold").asDouble());
        assertEquals(base, same.at("/latency/variant_kv_bytes").asLong());
        assertEquals(base, report.at("/latency_freeze/points/0/latency/variant_kv_bytes").asLong());
        assertTrue(report.get("latency_model").asText().contains("synthetic"));
    }

    /** The demo's numbers are sweep's: the same model, data and settings give the same estimates. */
    @Test
    void qualityAgreesWithSweepOnTheSameModelAndData() throws Exception {
        Path model = ShippedDemoModel.extractTo(tmp.resolve("model"));
        for (String mode : List.of("drop", "freeze")) {
            Path dir = tmp.resolve("sweep-" + mode);
            List<String> args = new ArrayList<>(List.of("sweep", model.toString(), "--mode", mode, "--thresholds", "0.6",
                    "--no-latency", "--report", dir.toString()));
            args.addAll(QUALITY_FLAGS);
            CliRun sweep = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, sweep.code(), sweep.err());
            JsonNode expected = new ObjectMapper().readTree(dir.resolve("report.json").toFile()).at("/points/0");
            JsonNode actual = report.at("/quality_" + mode + "/points/1");
            assertEquals(0.6, actual.get("threshold").asDouble());
            for (String field : List.of("threshold", "layers", "text", "tasks", "generation")) {
                assertEquals(expected.get(field), actual.get(field), mode + " " + field);
            }
        }
    }

    @Test
    void reportRendersInChromiumWithEveryChartAndTable() throws Exception {
        HeadlessChromium chromium = HeadlessChromium.find();
        Assumptions.assumeTrue(chromium != null, HeadlessChromium.missingReason());
        Path work = Files.createDirectories(tmp.resolve("browser"));
        HeadlessChromium.Page page = chromium.inspect(out.resolve("report.html"), work);
        assertEquals(List.of("demo-quality.png", "demo-latency.png"), page.images().stream().map(HeadlessChromium.Image::alt).toList());
        for (HeadlessChromium.Image image : page.images()) {
            assertTrue(image.loaded(), image.toString());
            assertEquals(800, image.naturalWidth(), image.toString());
        }
        assertTrue(page.headings().contains("Quality kept at the headline thresholds"), page.headings().toString());
        assertTrue(page.headings().contains("Latency"), page.headings().toString());
        assertEquals(6, page.tables(), page.headings().toString());

        Path shot = Files.createDirectories(Path.of("target", "browser-check")).resolve("demo-report.png");
        Files.deleteIfExists(shot);
        chromium.screenshot(out.resolve("report.html"), shot, 1280, 2400, work);
        BufferedImage png = ImageIO.read(shot.toFile());
        assertEquals(1280, png.getWidth());
        assertTrue(distinctColours(png) > 16, "the screenshot is blank: " + shot);
    }

    /** The browser check can fail: a chart whose PNG is corrupt is reported as not loaded. */
    @Test
    void chromiumCheckCatchesABrokenChart() throws Exception {
        HeadlessChromium chromium = HeadlessChromium.find();
        Assumptions.assumeTrue(chromium != null, HeadlessChromium.missingReason());
        Path work = Files.createDirectories(tmp.resolve("browser-broken"));
        String html = Files.readString(out.resolve("report.html"), StandardCharsets.UTF_8);
        String png = Base64.getEncoder().encodeToString(Files.readAllBytes(out.resolve("demo-latency.png")));
        assertTrue(html.contains(png));
        Path broken = work.resolve("report.html");
        String notAPng = Base64.getEncoder().encodeToString("not a png".getBytes(StandardCharsets.US_ASCII));
        Files.writeString(broken, html.replace(png, notAPng), StandardCharsets.UTF_8);
        HeadlessChromium.Page page = chromium.inspect(broken, work);
        assertTrue(page.images().get(0).loaded());
        assertFalse(page.images().get(1).loaded(), page.images().toString());
    }

    private static List<Double> thresholds(JsonNode points) {
        List<Double> t = new ArrayList<>();
        points.forEach(p -> t.add(p.get("threshold").asDouble()));
        return t;
    }

    private static double top1(JsonNode point) {
        return point.at("/text/top1_agreement/value").asDouble();
    }

    private static long distinctColours(BufferedImage image) {
        java.util.Set<Integer> colours = new java.util.HashSet<>();
        for (int y = 0; y < image.getHeight(); y += 7) {
            for (int x = 0; x < image.getWidth(); x += 7) {
                colours.add(image.getRGB(x, y));
            }
        }
        return colours.size();
    }
}
