package org.attnskip.reference;

import org.attnskip.onnx.BadInputException;

import java.util.Locale;

/**
 * What replaces each previous token's hidden vector in the random manipulation. How each kind is
 * drawn and applied is specified in {@link NoiseDraw}. Written as gaussian, angle:DEGREES or
 * shuffle on the command line, in reports and in a rewritten model's metadata.
 */
public sealed interface Noise {
    /** A Gaussian vector rescaled to the L2 norm of the vector it replaces. */
    Noise GAUSSIAN = new Gaussian();
    /** The same vector with its dimensions permuted. */
    Noise SHUFFLE = new Shuffle();

    /** A vector at this angle to the original, with the same norm. */
    static Noise angle(double degrees) {
        return new Angle(degrees);
    }

    /** gaussian | angle:DEGREES | shuffle */
    static Noise parse(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("gaussian")) {
            return GAUSSIAN;
        }
        if (t.equals("shuffle")) {
            return SHUFFLE;
        }
        if (t.startsWith("angle:")) {
            try {
                return angle(Double.parseDouble(t.substring(6)));
            } catch (NumberFormatException e) {
                throw new BadInputException("--noise " + text + ": the angle must be a number of degrees");
            }
        }
        throw new BadInputException("--noise " + text + ": expected gaussian, angle:DEGREES or shuffle");
    }

    record Gaussian() implements Noise {
        @Override
        public String toString() {
            return "gaussian";
        }
    }

    record Angle(double degrees) implements Noise {
        @Override
        public String toString() {
            return "angle:" + degrees;
        }
    }

    record Shuffle() implements Noise {
        @Override
        public String toString() {
            return "shuffle";
        }
    }
}
