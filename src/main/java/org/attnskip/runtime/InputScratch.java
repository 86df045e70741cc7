package org.attnskip.runtime;

import ai.onnxruntime.OnnxTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * What one sequence's runs reuse, so that a decode step allocates little: direct buffers for its
 * small integer inputs (ids, mask, positions) and its pinned logits output, the tensor over the
 * latter, a decode step's own input tensors ({@link StepInputs}), and the maps of a decode step's
 * feed and pinned outputs. A tensor made over such a buffer reads it in place: the buffer is written
 * again only between runs.
 * <p>
 * Until the JIT compiles the decode loop (a 256-token generation is mostly over by then), each
 * object and map entry a step builds costs microseconds: measured with the interpreter alone, the
 * step's two map copies and its logits tensor were a fifth of the Java side of a stories260K step.
 */
final class InputScratch implements AutoCloseable {
    private ByteBuffer[] buffers;
    private LogitsOutput.Pinned pinned;
    private StepInputs stepInputs;
    private Map<String, OnnxTensor> feed;
    private Map<String, OnnxTensor> feedSource;
    private Map<String, OnnxTensor> outputs;
    private Map<String, OnnxTensor> outputsSource;

    /** Slots 0-2 hold ids, mask and positions, 3 the pinned logits; more grow on demand. */
    InputScratch() {
        buffers = new ByteBuffer[4];
    }

    /** A native-order buffer of exactly {@code bytes} for input {@code index}, grown (doubling) when too small. */
    ByteBuffer take(int index, int bytes) {
        if (index >= buffers.length) {
            buffers = java.util.Arrays.copyOf(buffers, index + 1);
        }
        ByteBuffer b = buffers[index];
        if (b == null || b.capacity() < bytes) {
            b = ByteBuffer.allocateDirect(Math.max(bytes, b == null ? 64 : 2 * b.capacity())).order(ByteOrder.nativeOrder());
            buffers[index] = b;
        }
        return b.duplicate().clear().limit(bytes).slice().order(ByteOrder.nativeOrder());
    }

    /** The pinned logits kept from an earlier step, or null. */
    LogitsOutput.Pinned pinned() {
        return pinned;
    }

    /** Keeps {@code p} for the next steps, closing the one it replaces. */
    void keepPinned(LogitsOutput.Pinned p) {
        if (pinned != null) {
            pinned.tensor().close();
        }
        pinned = p;
    }

    /** The decode steps' token-side inputs kept from an earlier step, or null. */
    StepInputs stepInputs() {
        return stepInputs;
    }

    /** Keeps {@code s} for the next steps, closing the one it replaces. */
    void keepStepInputs(StepInputs s) {
        if (stepInputs != null) {
            stepInputs.close();
        }
        stepInputs = s;
    }

    /**
     * A decode step's feed: the cache's tensors, to which the step adds its own inputs (each step the
     * same names, so they replace the last step's). Rebuilt when the cache's tensors change.
     */
    Map<String, OnnxTensor> stepFeed(Map<String, OnnxTensor> cacheTensors) {
        if (feedSource != cacheTensors) {
            feed = new HashMap<>(cacheTensors);
            feedSource = cacheTensors;
        }
        return feed;
    }

    /**
     * Takes the caller's inputs of a step (a rewrite's noise, which the caller closes as it likes) out
     * of the kept feed again, putting back a cache tensor where one had the same name.
     */
    void forgetStepInputs(Iterable<String> names, Map<String, OnnxTensor> cacheTensors) {
        for (String name : names) {
            OnnxTensor own = cacheTensors.get(name);
            if (own != null) {
                feed.put(name, own);
            } else {
                feed.remove(name);
            }
        }
    }

    /** A decode step's pinned outputs: the cache's present bindings and the logits. */
    Map<String, OnnxTensor> stepOutputs(Map<String, OnnxTensor> presentBindings, String logitsName, OnnxTensor logits) {
        if (outputsSource != presentBindings || outputs.get(logitsName) != logits) {
            outputs = new HashMap<>(presentBindings);
            outputs.put(logitsName, logits);
            outputsSource = presentBindings;
        }
        return outputs;
    }

    /** Frees the logits tensor and the step inputs; the next step that needs them makes them again. */
    @Override
    public void close() {
        keepPinned(null);
        keepStepInputs(null);
        feed = null;
        feedSource = null;
        outputs = null;
        outputsSource = null;
    }
}
