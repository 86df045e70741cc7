package org.attnskip.layout;

import ai.onnx.proto.OnnxMl.NodeProto;
import org.attnskip.onnx.Graph;

/**
 * A projection weight as the opset-23/24 exporters write it: torch's [out][in] matrix stored as is
 * and read through {@code Transpose(perm=[1,0])}, which ONNX Runtime folds at load time.
 */
final class TransposedWeight {
    private TransposedWeight() {
    }

    /** True when the value is an initializer or the 2-D transpose of one. */
    static boolean isWeight(Graph g, String value) {
        if (g.isInitializer(value)) {
            return true;
        }
        NodeProto p = g.producer(value);
        return p != null && p.getOpType().equals("Transpose") && p.getDomain().isEmpty() && p.getInputCount() == 1
                && g.isInitializer(p.getInput(0)) && g.initializer(p.getInput(0)).get().getDimsCount() == 2;
    }
}
