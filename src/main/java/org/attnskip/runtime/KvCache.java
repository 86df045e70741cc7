package org.attnskip.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;

import java.util.Map;

/**
 * The past keys and values fed to the next run, by graph input name. They are either the empty
 * tensors of a new sequence or the {@code present.*} outputs of the previous run, in which case the
 * cache owns that run's result (closing it frees them).
 */
public final class KvCache implements AutoCloseable {
    private final Map<String, OnnxTensor> past;
    private final int batch;
    private final long length;
    private final OrtSession.Result owner;
    private boolean closed;

    KvCache(Map<String, OnnxTensor> past, int batch, long length, OrtSession.Result owner) {
        this.past = past;
        this.batch = batch;
        this.length = length;
        this.owner = owner;
    }

    Map<String, OnnxTensor> tensors() {
        return past;
    }

    public int batch() {
        return batch;
    }

    /** How many positions (padding included) the cache holds. */
    public long length() {
        return length;
    }

    @Override
    public void close() {
        if (closed) {
            return; // a run consumes its cache, and callers may close it again on their way out
        }
        closed = true;
        if (owner != null) {
            owner.close();
        } else {
            past.values().forEach(OnnxTensor::close);
        }
    }
}
