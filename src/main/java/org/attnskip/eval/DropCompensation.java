package org.attnskip.eval;

import org.attnskip.reference.AffineMap;
import org.attnskip.rewrite.LayerSelection;

import java.nio.file.Path;
import java.util.Map;

/** Fits calibrated drop's maps for the layers a threshold drops (the calibration lives above eval). */
public interface DropCompensation {
    /** The fitted maps by layer and the entries they add to the model's metadata. */
    record Fitted(Map<Integer, AffineMap> maps, Map<String, String> metadata) {
    }

    Fitted fit(Path baseline, LayerSelection selection);
}
