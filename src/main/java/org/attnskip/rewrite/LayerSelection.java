package org.attnskip.rewrite;

import org.attnskip.onnx.BadInputException;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.Collections;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * Which layers a manipulation touches. With a fraction f, k = ceil(f * L) and layers i >= k are
 * touched, so f = 1.0 touches nothing and f = 0.0 touches every layer (MANIPULATIONS.md).
 *
 * @param threshold the user's fraction as given, or null when layers were named directly
 * @param firstLayer k, or -1 for an explicit, possibly non-contiguous list
 */
public record LayerSelection(String threshold, int firstLayer, SortedSet<Integer> layers) {

    /** k = ceil(f * L), computed in decimal so that 0.6 * 5 is exactly 3. */
    /** k, for freeze, whose frozen layers are always the top block k..L-1: a list of layers is refused. */
    public int frozenFrom() {
        if (firstLayer < 0) {
            throw new BadInputException("freeze takes a threshold or --from-layer, not a list of layers");
        }
        return firstLayer;
    }

    public static LayerSelection fromFraction(String fraction, int numLayers) {
        BigDecimal f;
        try {
            f = new BigDecimal(fraction.trim());
        } catch (NumberFormatException e) {
            throw new BadInputException("threshold '" + fraction + "' is not a number between 0 and 1");
        }
        if (f.signum() < 0 || f.compareTo(BigDecimal.ONE) > 0) {
            throw new BadInputException("threshold " + fraction + " is outside [0, 1]");
        }
        int k = f.multiply(BigDecimal.valueOf(numLayers)).setScale(0, RoundingMode.CEILING).intValueExact();
        LayerSelection s = fromLayer(k, numLayers);
        return new LayerSelection(fraction.trim(), k, s.layers());
    }

    public static LayerSelection fromLayer(int k, int numLayers) {
        if (k < 0 || k > numLayers) {
            throw new BadInputException("first layer " + k + " is outside 0.." + numLayers + " (the model has "
                    + numLayers + " layers)");
        }
        TreeSet<Integer> layers = new TreeSet<>();
        for (int i = k; i < numLayers; i++) {
            layers.add(i);
        }
        return new LayerSelection(null, k, Collections.unmodifiableSortedSet(layers));
    }

    /** An explicit list such as "20,21,24". */
    public static LayerSelection fromList(String list, int numLayers) {
        TreeSet<Integer> layers = new TreeSet<>();
        for (String part : list.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) {
                continue;
            }
            int i;
            try {
                i = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new BadInputException("layer '" + p + "' in '" + list + "' is not an integer");
            }
            if (i < 0 || i >= numLayers) {
                throw new BadInputException("layer " + i + " does not exist (the model has layers 0.." + (numLayers - 1) + ")");
            }
            layers.add(i);
        }
        if (layers.isEmpty()) {
            throw new BadInputException("no layers given in '" + list + "'");
        }
        return new LayerSelection(null, -1, Collections.unmodifiableSortedSet(layers));
    }

    public boolean isEmpty() {
        return layers.isEmpty();
    }
}
