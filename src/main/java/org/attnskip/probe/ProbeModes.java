package org.attnskip.probe;

import org.attnskip.onnx.BadInputException;
import org.attnskip.reference.Noise;
import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.RewriteRequest;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The manipulations the probe's sensitivity experiment sweeps over k, as rewrite requests. Freeze
 * is measured in its evaluation form (every position scored), whose last-position logits are the
 * deployable form's.
 */
public final class ProbeModes {
    private ProbeModes() {
    }

    /** "drop,drop-compensated,freeze,freeze-single-input,random" with the given noise kinds for random, e.g. gaussian,angle:30,shuffle. */
    public static List<RewriteRequest> parse(String modes, String noises, long noiseSeed, int contextLength) {
        List<RewriteRequest> out = new ArrayList<>();
        for (String m : modes.split(",")) {
            switch (m.trim().toLowerCase(Locale.ROOT)) {
                case "" -> { }
                case "drop" -> out.add(RewriteRequest.drop(contextLength));
                case "drop-compensated" -> out.add(RewriteRequest.compensatedDropToFit(contextLength));
                case "freeze" -> out.add(RewriteRequest.freeze(FreezeKv.PAPER, FreezeForm.EVALUATION));
                case "freeze-single-input" -> out.add(RewriteRequest.freeze(FreezeKv.SINGLE_INPUT, FreezeForm.EVALUATION));
                case "random" -> {
                    for (String n : noises.split(",")) {
                        if (!n.isBlank()) {
                            out.add(RewriteRequest.random(Noise.parse(n), noiseSeed));
                        }
                    }
                }
                default -> throw new BadInputException("--modes " + modes + ": use drop, drop-compensated, freeze, freeze-single-input and random");
            }
        }
        if (out.isEmpty()) {
            throw new BadInputException("--modes names no manipulation");
        }
        return out;
    }
}
