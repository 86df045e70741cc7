package org.attnskip.serve;

import java.util.List;

/**
 * Cuts generated text at the first stop sequence, as OpenAI does (the stop text itself is not
 * returned). While streaming, text that might be the start of a stop sequence is held back until
 * the next pieces show whether it is.
 */
final class StopSequences {
    private final List<String> stops;
    private final StringBuilder text = new StringBuilder();
    private int released;
    private boolean stopped;

    StopSequences(List<String> stops) {
        this.stops = stops;
    }

    /** Adds a piece; returns the text now safe to send (possibly empty). */
    String add(String piece) {
        text.append(piece);
        int cut = -1;
        for (String s : stops) {
            int at = text.indexOf(s, released);
            if (at >= 0 && (cut < 0 || at < cut)) {
                cut = at;
            }
        }
        if (cut >= 0) {
            stopped = true;
            return release(cut);
        }
        return release(text.length() - heldBack());
    }

    /** The text still held back, once generation ended without a stop sequence. */
    String flush() {
        return stopped ? "" : release(text.length());
    }

    boolean stopped() {
        return stopped;
    }

    /** The released text. */
    String text() {
        return text.substring(0, released);
    }

    /** Length of the longest tail of the text that begins some stop sequence. */
    private int heldBack() {
        int best = 0;
        String all = text.toString();
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, text.length() - released); k > best; k--) {
                if (all.regionMatches(all.length() - k, s, 0, k)) {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }

    private String release(int upTo) {
        String out = text.substring(released, upTo);
        released = upTo;
        return out;
    }
}
