package org.attnskip.rewrite;

import org.attnskip.onnx.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayerSelectionTest {
    /** k = ceil(f * L), worked by hand from MANIPULATIONS.md's rule. */
    @ParameterizedTest
    @CsvSource({"0.6, 5, 3", "1.0, 5, 5", "0.0, 5, 0", "0.5, 12, 6", "0.55, 12, 7", "0.6, 2, 2", "0.5, 2, 1",
            "0.1, 12, 2", "0.3, 10, 3", "0.7, 10, 7"})
    void firstLayerIsCeilOfFractionTimesLayers(String f, int layers, int k) {
        LayerSelection s = LayerSelection.fromFraction(f, layers);
        assertEquals(k, s.firstLayer());
        assertEquals(layers - k, s.layers().size());
        if (k < layers) {
            assertEquals(k, s.layers().first());
            assertEquals(layers - 1, s.layers().last());
        }
    }

    @Test
    void explicitListIsSortedAndChecked() {
        assertEquals(List.of(1, 4, 7), List.copyOf(LayerSelection.fromList("7, 1,4", 8).layers()));
        assertTrue(assertThrows(BadInputException.class, () -> LayerSelection.fromList("1,8", 8))
                .getMessage().contains("layer 8 does not exist"));
        assertThrows(BadInputException.class, () -> LayerSelection.fromList("a", 8));
    }

    @Test
    void outOfRangeThresholdsAreRefused() {
        assertThrows(BadInputException.class, () -> LayerSelection.fromFraction("1.5", 4));
        assertThrows(BadInputException.class, () -> LayerSelection.fromFraction("-0.1", 4));
        assertThrows(BadInputException.class, () -> LayerSelection.fromFraction("half", 4));
        assertThrows(BadInputException.class, () -> LayerSelection.fromLayer(5, 4));
    }

    /** Freeze always takes the top block k..L-1, whatever the dialect, so a list of layers is refused before any pass. */
    @Test
    void freezeTakesTheFirstLayerOfATopBlockAndRefusesAList() {
        assertEquals(2, LayerSelection.fromLayer(2, 4).frozenFrom());
        assertEquals(2, LayerSelection.fromFraction("0.5", 4).frozenFrom());
        assertTrue(assertThrows(BadInputException.class, () -> LayerSelection.fromList("1,3", 4).frozenFrom())
                .getMessage().contains("not a list of layers"));
    }
}
