package org.attnskip.reference;

/**
 * What replaces each previous token's hidden vector in the random manipulation. How each kind is
 * drawn and applied is specified in {@link NoiseDraw}.
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

    record Gaussian() implements Noise {
    }

    record Angle(double degrees) implements Noise {
    }

    record Shuffle() implements Noise {
    }
}
