package org.attnskip.export;

import ai.onnx.proto.OnnxMl.TensorProto.DataType;
import org.attnskip.onnx.Tensors;

import static org.attnskip.export.OnnxGraphBuilder.in;

/**
 * The {@code logits_to_keep} input of attnskip's exports (Hugging Face transformers' convention):
 * 0 gives the logits of every position, n > 0 those of the last n. Generation and serving need only
 * the last position of a prefill, and the LM head (a hidden x vocab MatMul per position) is the
 * largest single cost of a prefill on small-hidden, large-vocabulary models.
 */
final class LogitsToKeep {
    static final String INPUT = "logits_to_keep";
    /** The logits' sequence axis: the input's length or n, so not the input's {@code sequence_length}. */
    static final String LOGITS_LENGTH = "logits_sequence_length";

    private LogitsToKeep() {
    }

    /** Declares the int64 [1] input. */
    static void declare(OnnxGraphBuilder g) {
        g.input(INPUT, DataType.INT64_VALUE, "1");
    }

    /**
     * {@code hidden} [batch, seq, dim] cut to its last n positions: Slice(starts = -n, ends = max,
     * axes = 1); n = 0 gives starts = -0 = 0, every position.
     */
    static String slice(OnnxGraphBuilder g, String hidden) {
        String p = "/model/logits_to_keep";
        String starts = g.op("Neg", p + "/Neg", in(INPUT));
        String ends = g.initializer(Tensors.longVector(p + "/ends", Long.MAX_VALUE));
        String axes = g.initializer(Tensors.longVector(p + "/axes", 1));
        return g.op("Slice", p + "/Slice", in(hidden, starts, ends, axes));
    }
}
