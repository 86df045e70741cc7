package org.attnskip;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Renders an HTML file in headless Chromium (Debian's {@code chromium}; or the browser that
 * ATTNSKIP_CHROMIUM names), for tests that check a report as a person's browser shows it.
 */
public final class HeadlessChromium {
    private static final List<String> FLAGS = List.of("--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run");
    private static final long TIMEOUT_SECONDS = 120;

    /** What the page reported once loaded: each image's state, and its tables and section titles. */
    public record Page(List<Image> images, int tables, List<String> headings) {
    }

    /** An img element: loaded means the browser decoded it (complete, with a natural size). */
    public record Image(String alt, boolean complete, int naturalWidth, int naturalHeight) {
        public boolean loaded() {
            return complete && naturalWidth > 0 && naturalHeight > 0;
        }
    }

    /** Appended to a copy of the page: after the load event it writes what the browser made of it into the DOM. */
    private static final String PROBE = "<script>window.addEventListener('load',function(){var r=[];"
            + "for(var i=0;i<document.images.length;i++){var m=document.images[i];"
            + "r.push('img\\t'+m.alt+'\\t'+m.complete+'\\t'+m.naturalWidth+'\\t'+m.naturalHeight);}"
            + "r.push('tables\\t'+document.querySelectorAll('table').length);"
            + "document.querySelectorAll('h2').forEach(function(h){r.push('h2\\t'+h.textContent);});"
            + "var p=document.createElement('pre');p.id='attnskip-probe';p.textContent=r.join('\\n');"
            + "document.body.appendChild(p);});</script>";
    private static final Pattern RESULT = Pattern.compile("<pre id=\"attnskip-probe\">(.*?)</pre>", Pattern.DOTALL);

    private final Path binary;

    private HeadlessChromium(Path binary) {
        this.binary = binary;
    }

    /** The installed browser, or null: then {@link #missingReason()} says why tests skip. */
    public static HeadlessChromium find() {
        String named = System.getenv("ATTNSKIP_CHROMIUM");
        if (named != null && Files.isExecutable(Path.of(named))) {
            return new HeadlessChromium(Path.of(named));
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            for (String name : List.of("chromium", "chromium-browser", "google-chrome")) {
                Path p = Path.of(dir, name);
                if (Files.isExecutable(p)) {
                    return new HeadlessChromium(p);
                }
            }
        }
        return null;
    }

    public static String missingReason() {
        return "no Chromium on PATH (nor ATTNSKIP_CHROMIUM): install it with 'apt-get install -y chromium' to check the report in a browser";
    }

    /** Loads {@code html} (a copy of it, with the probe script added, in {@code work}) and reads back what the page reported. */
    public Page inspect(Path html, Path work) throws IOException, InterruptedException {
        String page = Files.readString(html, StandardCharsets.UTF_8);
        if (!page.contains("</body>")) {
            throw new IllegalArgumentException(html + " has no </body>");
        }
        Path probed = work.resolve("probed-" + html.getFileName());
        Files.writeString(probed, page.replace("</body>", PROBE + "</body>"), StandardCharsets.UTF_8);
        String dom = run(work, "--virtual-time-budget=10000", "--dump-dom", probed.toUri().toString());
        Matcher m = RESULT.matcher(dom);
        if (!m.find()) {
            throw new IllegalStateException("the page never reported back (load event missing?); DOM starts: "
                    + dom.substring(0, Math.min(300, dom.length())));
        }
        List<Image> images = new ArrayList<>();
        List<String> headings = new ArrayList<>();
        int tables = -1;
        for (String line : m.group(1).split("\n")) {
            String[] f = line.split("\t", -1);
            switch (f[0]) {
                case "img" -> images.add(new Image(f[1], Boolean.parseBoolean(f[2]), Integer.parseInt(f[3]), Integer.parseInt(f[4])));
                case "tables" -> tables = Integer.parseInt(f[1]);
                case "h2" -> headings.add(f[1].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"));
                default -> throw new IllegalStateException("unexpected probe line: " + line);
            }
        }
        return new Page(images, tables, headings);
    }

    /** Saves a screenshot of {@code html} as it renders at {@code width} x {@code height} pixels. */
    public void screenshot(Path html, Path png, int width, int height, Path work) throws IOException, InterruptedException {
        run(work, "--virtual-time-budget=10000", "--hide-scrollbars", "--window-size=" + width + "," + height,
                "--screenshot=" + png.toAbsolutePath(), html.toUri().toString());
        if (!Files.isRegularFile(png)) {
            throw new IllegalStateException("Chromium wrote no screenshot to " + png);
        }
    }

    /** One browser run with a fresh profile; returns its stdout. */
    private String run(Path work, String... args) throws IOException, InterruptedException {
        Path profile = Files.createTempDirectory(work, "chromium-profile");
        List<String> command = new ArrayList<>();
        command.add(binary.toString());
        command.addAll(FLAGS);
        command.add("--user-data-dir=" + profile);
        command.addAll(List.of(args));
        Path out = work.resolve("chromium.out");
        Path err = work.resolve("chromium.err");
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new IllegalStateException("Chromium did not finish within " + TIMEOUT_SECONDS + " s");
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException("Chromium exited with " + p.exitValue() + ": " + Files.readString(err));
        }
        return Files.readString(out, StandardCharsets.UTF_8);
    }
}
