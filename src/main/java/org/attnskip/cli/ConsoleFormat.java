package org.attnskip.cli;

import org.attnskip.eval.Estimate;

import java.util.Locale;

/** Formats an estimate for the console as "value [low, high]". */
final class ConsoleFormat {
    private ConsoleFormat() {
    }

    static String est(Estimate e) {
        return String.format(Locale.ROOT, "%.4f [%.4f, %.4f]", e.value(), e.low(), e.high());
    }
}
