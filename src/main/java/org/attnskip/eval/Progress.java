package org.attnskip.eval;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;

/**
 * Progress of one stage on stderr: a progress bar on a terminal, otherwise a plain line at the start
 * and at every tenth of the way (so logs stay readable), or nothing at all when quiet. NO_COLOR,
 * TERM=dumb and CI ask for plain lines too: a bar redraws itself with carriage returns. A stage
 * counted in bytes ({@link #ofBytes}) shows MB and MB/s, and off a terminal one line per item.
 */
public final class Progress implements AutoCloseable {
    private static final long MB = 1L << 20;
    private static final long GB = 1L << 30;
    private final ProgressBar bar;
    private final PrintStream plain;
    private final String name;
    private final long total;
    private long done;
    private long nextReport;
    private final long startNanos = System.nanoTime();

    private Progress(String name, long total, boolean quiet) {
        this(name, total, quiet, false);
    }

    private Progress(String name, long total, boolean quiet, boolean bytes) {
        this.name = name;
        this.total = total;
        if (quiet) {
            bar = null;
            plain = null;
        } else if (interactive()) {
            ProgressBarBuilder builder = new ProgressBarBuilder().setTaskName(name).setInitialMax(total)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250);
            if (bytes) {
                builder.setUnit(" MB", MB).showSpeed();
            }
            bar = builder.build();
            plain = null;
        } else {
            bar = null;
            plain = System.err;
            plain.printf(bytes ? "%s: %d bytes to write%n" : "%s: 0/%d%n", name, total);
            nextReport = Math.max(1, total / 10);
        }
    }

    /** True when a progress bar may redraw itself: a terminal that did not ask for plain output. */
    public static boolean interactive() {
        return interactive(System.getenv(), System.console() != null);
    }

    public static boolean interactive(java.util.Map<String, String> env, boolean console) {
        boolean noColor = env.get("NO_COLOR") != null && !env.get("NO_COLOR").isEmpty();
        return console && !noColor && !"dumb".equals(env.get("TERM")) && env.get("CI") == null;
    }

    public static Progress start(String name, long total, boolean quiet) {
        return new Progress(name, total, quiet);
    }

    /** A stage of about {@code totalBytes} bytes, advanced item by item with {@link #advance}. */
    public static Progress ofBytes(String name, long totalBytes, boolean quiet) {
        return new Progress(name, totalBytes, quiet, true);
    }

    /** One more item of {@code itemBytes} bytes done (a tensor written, say). */
    public void advance(String item, long itemBytes) {
        done += itemBytes;
        if (bar != null) {
            bar.setExtraMessage(" " + item);
            bar.stepBy(itemBytes);
        } else if (plain != null) {
            double seconds = Math.max(1e-9, (System.nanoTime() - startNanos) / 1e9);
            plain.printf("%s: %s %.1f MB, %.2f of %.2f GB (%.0f%%), %.0f MB/s%n", name, item, itemBytes / (double) MB,
                    done / (double) GB, total / (double) GB, 100.0 * done / Math.max(1, total), done / (double) MB / seconds);
        }
    }

    public void step() {
        done++;
        if (bar != null) {
            bar.step();
        } else if (plain != null && (done >= nextReport || done == total)) {
            plain.printf("%s: %d/%d%n", name, done, total);
            nextReport = done + Math.max(1, total / 10);
        }
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
