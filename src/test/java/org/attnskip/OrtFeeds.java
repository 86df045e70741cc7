package org.attnskip;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.OnnxJavaType;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayerLayout;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Runs any decoder graph that layout discovery recognises on seeded inputs: token ids, a full
 * mask, positions after the past, and random past KV of a given length. Test-only: it lets tests
 * compare two graphs (before/after save, before/after a rewrite) without knowing their dialect.
 */
public final class OrtFeeds {
    private OrtFeeds() {
    }

    /** Runs the model file and returns every output as a flat float array. */
    public static Map<String, float[]> run(Path model, DecoderLayout layout, int seq, int past, long seed) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment(ai.onnxruntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
             OrtSession session = env.createSession(model.toString(), opts)) {
            Set<String> kvInputs = new HashSet<>();
            for (LayerLayout l : layout.layers()) {
                kvInputs.addAll(l.kv().inputs());
            }
            Random rnd = new Random(seed);
            Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
            try {
                for (Map.Entry<String, NodeInfo> e : session.getInputInfo().entrySet()) {
                    String name = e.getKey();
                    TensorInfo info = (TensorInfo) e.getValue().getInfo();
                    long[] shape = info.getShape().clone();
                    if (kvInputs.contains(name)) {
                        for (int d = 0; d < shape.length; d++) {
                            if (shape[d] < 0) {
                                shape[d] = d == firstSymbolic(info.getShape()) ? 1 : past;
                            }
                        }
                        feeds.put(name, floats(env, info, shape, rnd));
                    } else {
                        boolean isMask = name.equals(layout.attentionMask());
                        for (int d = 0; d < shape.length; d++) {
                            if (shape[d] < 0) {
                                shape[d] = d == 0 ? 1 : (isMask ? past + seq : seq);
                            }
                        }
                        long n = 1;
                        for (long s : shape) {
                            n *= s;
                        }
                        long[] values = new long[(int) n];
                        for (int i = 0; i < n; i++) {
                            if (isMask) {
                                values[i] = 1;
                            } else if (name.equals(layout.positionIds())) {
                                values[i] = past + (i % shape[shape.length - 1]);
                            } else {
                                values[i] = rnd.nextInt(Math.max(2, Math.min(layout.vocabSize(), 500)));
                            }
                        }
                        feeds.put(name, ints(env, info, shape, values));
                    }
                }
                Map<String, float[]> out = new LinkedHashMap<>();
                try (OrtSession.Result result = session.run(feeds)) {
                    for (Map.Entry<String, OnnxValue> e : result) {
                        out.put(e.getKey(), toFloats((OnnxTensor) e.getValue()));
                    }
                }
                return out;
            } finally {
                feeds.values().forEach(OnnxTensor::close);
            }
        }
    }

    private static int firstSymbolic(long[] shape) {
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] < 0) {
                return d;
            }
        }
        return -1;
    }

    private static OnnxTensor floats(OrtEnvironment env, TensorInfo info, long[] shape, Random rnd) throws OrtException {
        int n = (int) count(shape);
        if (info.type == OnnxJavaType.FLOAT16) {
            ByteBuffer b = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.nativeOrder());
            for (int i = 0; i < n; i++) {
                b.putShort(org.attnskip.onnx.Half.fromFloat((float) rnd.nextGaussian()));
            }
            b.rewind();
            return OnnxTensor.createTensor(env, b, shape, OnnxJavaType.FLOAT16);
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return OnnxTensor.createTensor(env, java.nio.FloatBuffer.wrap(v), shape);
    }

    private static OnnxTensor ints(OrtEnvironment env, TensorInfo info, long[] shape, long[] values) throws OrtException {
        if (info.type == OnnxJavaType.INT32) {
            int[] v = new int[values.length];
            for (int i = 0; i < v.length; i++) {
                v[i] = (int) values[i];
            }
            return OnnxTensor.createTensor(env, java.nio.IntBuffer.wrap(v), shape);
        }
        return OnnxTensor.createTensor(env, java.nio.LongBuffer.wrap(values), shape);
    }

    private static long count(long[] shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        return n;
    }

    public static float[] toFloats(OnnxTensor t) {
        TensorInfo info = t.getInfo();
        int n = (int) info.getNumElements();
        float[] out = new float[n];
        if (info.type == OnnxJavaType.FLOAT16) {
            ByteBuffer b = t.getByteBuffer().order(ByteOrder.nativeOrder());
            for (int i = 0; i < n; i++) {
                out[i] = org.attnskip.onnx.Half.toFloat(b.getShort(2 * i));
            }
        } else {
            t.getFloatBuffer().get(out);
        }
        return out;
    }
}
