package org.attnskip.rewrite;

import org.attnskip.onnx.BadInputException;

import java.util.Locale;

/**
 * The manipulation a rewrite applies to the selected layers (MANIPULATIONS.md): the one spelling
 * that optimize, sweep, probe, demo, the change report and the model's metadata share.
 */
public enum Mode {
    /** The attention sub-block goes; calibrated drop puts a fitted map in its place. */
    DROP("drop"),
    /** Previous tokens' K/V in layers above k come from their stream at layer k's input. */
    FREEZE("freeze"),
    /** Previous tokens' hidden vectors at layer k's input are replaced by seeded noise (analysis). */
    RANDOM("random");

    public final String label;

    Mode(String label) {
        this.label = label;
    }

    /** drop, freeze or random; {@code option} names where the text came from in the error. */
    public static Mode parse(String text, String option) {
        String t = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
        for (Mode m : values()) {
            if (m.label.equals(t)) {
                return m;
            }
        }
        throw new BadInputException(option + " " + text + ": use drop, freeze or random");
    }

    /** The label: what reports, JSON and the model's metadata show. */
    @Override
    public String toString() {
        return label;
    }
}
