package org.attnskip.eval;

import org.attnskip.layout.IndexedReads;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.onnx.Tensors;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The memory-bound floor of one decode step: every weight is read once and every cached key and
 * value of the context once, so no step can take less than those bytes over the read bandwidth.
 * Tables that a step only indexes (token embeddings, rotary cos/sin looked up by position: an
 * initializer whose every use is the data input of a Gather, or the cos/sin cache of ONNX Runtime's
 * RotaryEmbedding or GroupQueryAttention) are read one row at a time and are not counted.
 *
 * @param weightBytes        initializer bytes read per decode step
 * @param kvBytesPerToken K and V bytes of one position over all layers that keep a cache
 */
public record DecodeFloor(long weightBytes, long kvBytesPerToken) {

    public static DecodeFloor of(Path model, long kvBytesPerToken) {
        return new DecodeFloor(weightBytesPerStep(OnnxModelIO.load(model)), kvBytesPerToken);
    }

    /** Bytes one step reads at a context of {@code context} positions. */
    public long bytesPerStep(int context) {
        return weightBytes + kvBytesPerToken * context;
    }

    /** The floor in milliseconds for a read bandwidth in bytes per second. */
    public double floorMs(int context, double bytesPerSecond) {
        return bytesPerStep(context) / bytesPerSecond * 1e3;
    }

    static long weightBytesPerStep(LoadedModel model) {
        Graph graph = model.graph();
        long bytes = 0;
        for (Map.Entry<String, TensorProto> e : graph.initializers().entrySet()) {
            if (!onlyIndexed(graph.consumers(e.getKey()), e.getKey())) {
                TensorProto t = e.getValue();
                bytes += Tensors.elementCount(t) * Tensors.elementSize(t.getDataType());
            }
        }
        return bytes;
    }

    private static boolean onlyIndexed(List<NodeProto> uses, String name) {
        // an unused initializer is never read
        return uses.stream().allMatch(n -> {
            for (int i = 0; i < n.getInputCount(); i++) {
                if (n.getInput(i).equals(name) && !IndexedReads.readsSelectedRowsOnly(n, i)) {
                    return false;
                }
            }
            return true;
        });
    }
}
