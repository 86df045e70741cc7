package org.attnskip.probe;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Half;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import org.attnskip.runtime.DecoderIo;
import org.attnskip.runtime.Device;
import org.attnskip.runtime.OpenedSession;
import org.attnskip.runtime.OrtSessionFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Runs a graph that {@link ExposeResidualStreamPass} rewrote on one prompt (a single prefill with
 * an empty past, batch 1) and returns its logits and residual streams. The token inputs, caches
 * (fed empty, length 0) and logits are those layout discovery found ({@link DecoderIo}).
 */
public final class HiddenStateRunner implements AutoCloseable {
    /**
     * One prompt's pass. hidden[l][t]: the stream entering layer l at position t (l = L: the last
     * layer's output); attentionOut[l][t]: after layer l's attention add. A layer that the graph
     * could not expose is null. logits[t] is the logits row of position t.
     */
    public record Pass(float[][][] hidden, float[][][] attentionOut, float[][] logits) {
        public int layers() {
            return attentionOut.length;
        }
    }

    private final OrtEnvironment env = OrtSessionFactory.environment();
    private final OpenedSession opened;
    private final DecoderIo io;
    private final int layers;

    private HiddenStateRunner(OpenedSession opened, DecoderIo io, int layers) {
        this.opened = opened;
        this.io = io;
        this.layers = layers;
    }

    /** Opens an exposed graph; the layer count is read from its attnskip.attn_out.* outputs. */
    public static HiddenStateRunner open(Path exposedModel, Device device) {
        DecoderIo io = DecoderIo.discover(exposedModel);
        OpenedSession opened = OrtSessionFactory.open(exposedModel, device);
        try {
            int layers = 0;
            for (String name : opened.session().getOutputNames()) {
                if (name.startsWith(ExposeResidualStreamPass.HIDDEN_PREFIX)) {
                    layers = Math.max(layers, Integer.parseInt(name.substring(ExposeResidualStreamPass.HIDDEN_PREFIX.length())));
                }
            }
            if (layers == 0) {
                throw new BadInputException("the graph exposes no residual stream (no '" + ExposeResidualStreamPass.HIDDEN_PREFIX + "*' outputs)");
            }
            return new HiddenStateRunner(opened, io, layers);
        } catch (RuntimeException e) {
            opened.close();
            throw e;
        }
    }

    /** Opens any decoder graph to read outputs by name ({@link #outputs}), residual stream exposed or not. */
    public static HiddenStateRunner openForOutputs(Path model, Device device) {
        DecoderIo io = DecoderIo.discover(model);
        return new HiddenStateRunner(OrtSessionFactory.open(model, device), io, 0);
    }

    public int layers() {
        return layers;
    }

    /** One prompt's pass, these [1, S, N] outputs as [S][N] each (null where the graph lacks one). */
    public Map<String, float[][]> outputs(int[] tokens, java.util.List<String> names) {
        Map<String, OnnxTensor> feed = new HashMap<>();
        try {
            feed(tokens, feed);
            try (OrtSession.Result result = opened.session().run(feed, new java.util.HashSet<>(names))) {
                Map<String, float[][]> out = new java.util.LinkedHashMap<>();
                for (String name : names) {
                    out.put(name, read(result, name));
                }
                return out;
            }
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime failed to run the graph: " + e.getMessage().lines().findFirst().orElse(""), e);
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    public Pass run(int[] tokens) {
        OrtSession session = opened.session();
        Map<String, OnnxTensor> feed = new HashMap<>();
        try {
            feed(tokens, feed);
            try (OrtSession.Result result = session.run(feed)) {
                float[][][] hidden = new float[layers + 1][][];
                float[][][] attention = new float[layers][][];
                for (int l = 0; l <= layers; l++) {
                    hidden[l] = read(result, ExposeResidualStreamPass.hiddenName(l));
                    if (l < layers) {
                        attention[l] = read(result, ExposeResidualStreamPass.attentionOutName(l));
                    }
                }
                return new Pass(hidden, attention, read(result, io.logits()));
            }
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime failed to run the graph: " + e.getMessage().lines().findFirst().orElse(""), e);
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    /** Token ids, a full mask, positions 0..S-1 and empty caches, as the graph declares them. */
    private void feed(int[] tokens, Map<String, OnnxTensor> feed) throws OrtException {
        OrtSession session = opened.session();
        int s = tokens.length;
        for (Map.Entry<String, NodeInfo> e : session.getInputInfo().entrySet()) {
            String name = e.getKey();
            TensorInfo info = (TensorInfo) e.getValue().getInfo();
            if (name.equals(io.inputIds())) {
                feed.put(name, row(java.util.Arrays.stream(tokens).asLongStream().toArray(), info.type));
            } else if (name.equals(io.attentionMask())) {
                feed.put(name, row(filled(s, i -> 1), info.type));
            } else if (name.equals(io.positionIds())) {
                feed.put(name, row(filled(s, i -> i), info.type));
            } else if (io.caches().stream().anyMatch(c -> c.past().equals(name))) {
                // batch 1 and no past positions; a stacked cache has its [2] axis in front
                int at = io.caches().stream().anyMatch(c -> c.past().equals(name) && c.stacked()) ? 1 : 0;
                long[] shape = info.getShape().clone();
                shape[at] = 1;
                shape[at + 2] = 0;
                feed.put(name, OnnxTensor.createTensor(env, ByteBuffer.allocateDirect(0), shape, info.type));
            } else {
                throw new BadInputException("cannot feed graph input '" + name + "' for the probe");
            }
        }
    }

    /** A [1, S, N] output as [S][N]; null when the graph does not have it. */
    private static float[][] read(OrtSession.Result result, String name) {
        var value = result.get(name);
        if (value.isEmpty()) {
            return null;
        }
        OnnxTensor t = (OnnxTensor) value.get();
        long[] shape = t.getInfo().getShape();
        int rows = (int) shape[shape.length - 2];
        int cols = (int) shape[shape.length - 1];
        float[][] out = new float[rows][cols];
        if (t.getInfo().type == OnnxJavaType.FLOAT16) {
            ShortBuffer half = t.getShortBuffer();
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    out[i][j] = Half.toFloat(half.get(i * cols + j));
                }
            }
        } else {
            var f = t.getFloatBuffer();
            for (int i = 0; i < rows; i++) {
                f.get(out[i]);
            }
        }
        return out;
    }

    private static long[] filled(int n, java.util.function.IntToLongFunction f) {
        long[] v = new long[n];
        for (int i = 0; i < n; i++) {
            v[i] = f.applyAsLong(i);
        }
        return v;
    }

    /** One row as int64, or int32 where the graph declares it (ORT GenAI's ids and masks). */
    private OnnxTensor row(long[] v, OnnxJavaType type) throws OrtException {
        if (type == OnnxJavaType.INT32) {
            int[] ints = new int[v.length];
            for (int i = 0; i < v.length; i++) {
                ints[i] = Math.toIntExact(v[i]);
            }
            return OnnxTensor.createTensor(env, java.nio.IntBuffer.wrap(ints), new long[] {1, v.length});
        }
        LongBuffer buf = ByteBuffer.allocateDirect(8 * v.length).order(ByteOrder.nativeOrder()).asLongBuffer();
        buf.put(v).rewind();
        return OnnxTensor.createTensor(env, buf, new long[] {1, v.length});
    }

    @Override
    public void close() {
        opened.close();
    }
}
