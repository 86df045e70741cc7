package org.attnskip.runtime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

/**
 * An ONNX Runtime session and the device it actually runs on.
 *
 * @param fallbackNote null, or one line saying that CUDA was asked for ({@code auto}) but the CPU is
 *                     used, and why; the caller prints it
 */
public record OpenedSession(OrtSession session, Device device, String fallbackNote) implements AutoCloseable {
    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException("cannot close ONNX Runtime session: " + e.getMessage(), e);
        }
    }
}
