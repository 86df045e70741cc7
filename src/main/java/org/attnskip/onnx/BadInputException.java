package org.attnskip.onnx;

/**
 * A problem with what the user gave us (a corrupt file, an unsupported graph, a bad option).
 * The CLI turns it into exit code 2 and prints only the message, so the message must name
 * what was missing or wrong in one line.
 */
public class BadInputException extends RuntimeException {
    public BadInputException(String message) {
        super(message);
    }

    public BadInputException(String message, Throwable cause) {
        super(message, cause);
    }
}
