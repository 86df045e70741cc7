package org.attnskip.eval;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;

/**
 * Progress of one stage on stderr: a progress bar on a terminal, otherwise a plain line at the start
 * and at every tenth of the way (so logs stay readable), or nothing at all when quiet.
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
        } else if (System.console() != null) {
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
