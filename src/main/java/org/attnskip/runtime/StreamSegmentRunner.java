package org.attnskip.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import org.attnskip.onnx.BadInputException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs a slice of a decoder graph that starts at a residual stream instead of the token
 * embedding: one prompt as a single prefill with an empty past, batch 1, as
 * {@link DecoderSession#prefillOutputs} runs the whole graph. The slice keeps the model's graph
 * inputs (token ids, mask, positions, caches, under the names of the whole model's {@link DecoderIo})
 * and takes one more, the fp32 stream [1, S, hidden]; the token inputs are fed as for the whole
 * model, every cache input it still declares as an empty [1, heads, 0, head_dim] (or stacked) tensor.
 */
public final class StreamSegmentRunner implements AutoCloseable {
    private final OrtEnvironment env = OrtSessionFactory.environment();
    private final OpenedSession opened;
    private final TokenFeed tokens;
    private final LogitsToKeepFeed keep;
    private final String streamInput;
    private final Map<String, long[]> emptyShapes = new LinkedHashMap<>();
    private final Map<String, OnnxJavaType> emptyTypes = new HashMap<>();

    private StreamSegmentRunner(OpenedSession opened, DecoderIo io, String streamInput) throws OrtException {
        this.opened = opened;
        this.streamInput = streamInput;
        Map<String, NodeInfo> inputs = opened.session().getInputInfo();
        this.tokens = new TokenFeed(env, io, inputs);
        this.keep = new LogitsToKeepFeed(env, io.logitsToKeep(), inputs);
        Set<String> fedByTokens = new LinkedHashSet<>();
        fedByTokens.add(io.logitsToKeep());
        fedByTokens.add(io.inputIds());
        fedByTokens.add(io.attentionMask());
        fedByTokens.add(io.positionIds());
        Map<String, DecoderIo.CachePair> caches = new HashMap<>();
        io.caches().forEach(c -> caches.put(c.past(), c));
        for (NodeInfo in : inputs.values()) {
            String name = in.getName();
            if (name.equals(streamInput) || fedByTokens.contains(name)) {
                continue;
            }
            DecoderIo.CachePair pair = caches.get(name);
            if (pair == null || pair.inPlace()) {
                throw new IllegalStateException("a segment input that is neither a token input nor a growing cache: " + name);
            }
            TensorInfo info = TokenFeed.tensorInfo(in);
            emptyShapes.put(name, emptyShape(name, info.getShape(), pair.stacked()));
            emptyTypes.put(name, info.type);
        }
    }

    /** Opens a segment graph whose extra input {@code streamInput} takes the stream; io is the whole model's. */
    public static StreamSegmentRunner open(Path segment, DecoderIo io, String streamInput, Device device) {
        OpenedSession opened = OrtSessionFactory.open(segment, device);
        try {
            return new StreamSegmentRunner(opened, io, streamInput);
        } catch (OrtException e) {
            opened.close();
            throw new BadInputException("cannot read the segment's inputs: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            opened.close();
            throw e;
        }
    }

    /** [batch, heads, 0, head_dim] (or [2, batch, ...] stacked): the batch is 1, the past is empty. */
    private static long[] emptyShape(String name, long[] declared, boolean stacked) {
        long[] shape = declared.clone();
        int batch = stacked ? 1 : 0;
        int length = shape.length - 2;
        for (int d = 0; d < shape.length; d++) {
            if (d == length) {
                shape[d] = 0;
            } else if (shape[d] < 0) {
                if (d != batch) {
                    throw new IllegalStateException("cache input " + name + " has an open dimension " + d);
                }
                shape[d] = 1;
            }
        }
        return shape;
    }

    /** The named [1, S, N] outputs as [S][N] for one prompt whose stream is {@code stream} [S][hidden]. */
    public Map<String, float[][]> outputs(int[] ids, float[][] stream, List<String> names) {
        Map<String, OnnxTensor> feed = new HashMap<>();
        List<OnnxTensor> made = new ArrayList<>();
        try {
            made.addAll(tokens.putAppended(feed, ids, 0, null));
            keep.put(feed, LogitRows.ALL);
            for (Map.Entry<String, long[]> e : emptyShapes.entrySet()) {
                OnnxTensor t = OnnxTensor.createTensor(env, ByteBuffer.allocateDirect(0), e.getValue(), emptyTypes.get(e.getKey()));
                made.add(t);
                feed.put(e.getKey(), t);
            }
            OnnxTensor s = streamTensor(stream);
            made.add(s);
            feed.put(streamInput, s);
            try (OrtSession.Result result = opened.session().run(feed, new LinkedHashSet<>(names))) {
                Map<String, float[][]> out = new LinkedHashMap<>();
                for (String name : names) {
                    out.put(name, FloatOutputs.rows(result, name));
                }
                return out;
            }
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime failed to run the segment: " + OrtSessionFactory.firstLine(e.getMessage()), e);
        } finally {
            made.forEach(OnnxTensor::close);
        }
    }

    private OnnxTensor streamTensor(float[][] rows) throws OrtException {
        int width = rows[0].length;
        FloatBuffer buf = ByteBuffer.allocateDirect(4 * rows.length * width).order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (float[] row : rows) {
            buf.put(row);
        }
        buf.rewind();
        return OnnxTensor.createTensor(env, buf, new long[] {1, rows.length, width});
    }

    @Override
    public void close() {
        keep.close();
        opened.close();
    }
}
