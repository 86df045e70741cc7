package org.attnskip.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import org.attnskip.onnx.BadInputException;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Opens ONNX Runtime sessions on the chosen device. {@code cuda} fails with one line when the CUDA
 * execution provider cannot load (the CPU-only build, or no CUDA 12 on the machine); {@code auto}
 * then falls back to the CPU and says so in {@link OpenedSession#fallbackNote()}.
 */
public final class OrtSessionFactory {
    static final String CUDA_UNAVAILABLE = "CUDA execution provider is not available: "
            + "build with -Pgpu and install CUDA 12 and cuDNN 9, or use --device cpu";

    private OrtSessionFactory() {
    }

    /**
     * @param intraOpThreads 0 for all cores
     */
    public record Settings(Device device, int intraOpThreads, OptLevel optimization) {
        public static Settings of(Device device) {
            return new Settings(device, 0, OptLevel.ALL_OPT);
        }
    }

    /** The process's one ONNX Runtime environment, whoever made it first; sessions set their own log level. */
    public static OrtEnvironment environment() {
        return OrtEnvironment.getEnvironment();
    }

    public static OpenedSession open(Path modelFile, Device device) {
        return open(modelFile, Settings.of(device));
    }

    public static OpenedSession open(Path modelFile, Settings settings) {
        if (!Files.isRegularFile(modelFile)) {
            throw new BadInputException("no such model file: " + modelFile);
        }
        OrtEnvironment env = environment();
        if (settings.device() == Device.CPU) {
            return new OpenedSession(create(env, modelFile, settings, false), Device.CPU, null);
        }
        String cudaProblem = cudaProblem();
        if (cudaProblem == null) {
            try {
                return new OpenedSession(create(env, modelFile, settings, true), Device.CUDA, null);
            } catch (CudaLoadFailure e) {
                cudaProblem = e.getMessage();
            }
        }
        if (settings.device() == Device.CUDA) {
            throw new BadInputException(cudaProblem);
        }
        return new OpenedSession(create(env, modelFile, settings, false), Device.CPU,
                "device auto: CUDA is not available here, running on the CPU");
    }

    /** Null when the CUDA provider is compiled into this ONNX Runtime build, else the reason it is not. */
    static String cudaProblem() {
        return OrtEnvironment.getAvailableProviders().contains(OrtProvider.CUDA) ? null : CUDA_UNAVAILABLE;
    }

    private static OrtSession create(OrtEnvironment env, Path modelFile, Settings settings, boolean cuda) {
        try (SessionOptions options = new SessionOptions()) {
            options.setOptimizationLevel(settings.optimization());
            options.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR);
            int threads = settings.intraOpThreads() > 0 ? settings.intraOpThreads() : Runtime.getRuntime().availableProcessors();
            options.setIntraOpNumThreads(threads);
            if (cuda) {
                try {
                    options.addCUDA(0);
                } catch (OrtException e) {
                    // The provider is in the build but its libraries (CUDA 12, cuDNN) or a GPU are missing.
                    throw new CudaLoadFailure(CUDA_UNAVAILABLE + " (" + firstLine(e.getMessage()) + ")");
                }
            }
            return env.createSession(modelFile.toString(), options);
        } catch (OrtException e) {
            throw new BadInputException("ONNX Runtime cannot load " + modelFile + ": " + firstLine(e.getMessage()), e);
        }
    }

    static String firstLine(String message) {
        if (message == null) {
            return "unknown error";
        }
        int nl = message.indexOf('\n');
        return (nl < 0 ? message : message.substring(0, nl)).trim();
    }

    private static final class CudaLoadFailure extends RuntimeException {
        CudaLoadFailure(String message) {
            super(message);
        }
    }
}
