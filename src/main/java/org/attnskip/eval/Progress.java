package org.attnskip.eval;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;

/**
 * Progress of one stage on stderr: a progress bar on a terminal, otherwise a plain line at the start
 * and at every tenth of the way (so logs stay readable), or nothing at all when quiet. NO_COLOR,
 * TERM=dumb and CI ask for plain lines too: a bar redraws itself with carriage returns.
 */
public final class Progress implements AutoCloseable {
    private final ProgressBar bar;
    private final PrintStream plain;
    private final String name;
    private final long total;
    private long done;
    private long nextReport;

    private Progress(String name, long total, boolean quiet) {
        this.name = name;
        this.total = total;
        if (quiet) {
            bar = null;
            plain = null;
        } else if (interactive()) {
            bar = new ProgressBarBuilder().setTaskName(name).setInitialMax(total)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).build();
            plain = null;
        } else {
            bar = null;
            plain = System.err;
            plain.printf("%s: 0/%d%n", name, total);
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
