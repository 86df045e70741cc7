package org.attnskip.runtime;

import org.attnskip.onnx.BadInputException;

import java.util.Locale;

/** Where ONNX Runtime runs a model: the CPU, a CUDA GPU, or CUDA when it can load and the CPU otherwise. */
public enum Device {
    CPU, CUDA, AUTO;

    public static Device parse(String name) {
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new BadInputException("unknown device '" + name + "': use cpu, cuda or auto");
        }
    }

    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
