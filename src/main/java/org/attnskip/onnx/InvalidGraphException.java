package org.attnskip.onnx;

/**
 * A graph the tool itself produced is not well formed: a bug of ours, not bad input, so the
 * command exits 1 (with one line) and writes nothing.
 */
public final class InvalidGraphException extends RuntimeException {
    public InvalidGraphException(String message) {
        super(message);
    }
}
