package org.attnskip.export;

import ai.onnx.proto.OnnxMl.ModelProto;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ExternalDataWriter;
import org.attnskip.onnx.ConfinedPath;
import org.attnskip.onnx.FileWrites;
import org.attnskip.onnx.LeftoverTemps;
import org.attnskip.onnx.OutputPath;
import org.attnskip.onnx.OnnxModelIO;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * A model directory: {@code model.onnx} (and {@code model.onnx.data} when its weights are
 * external), {@code attnskip.json} describing it, and the tokenizer file it needs. Written whole or
 * not at all: everything goes into a hidden temporary directory beside the target, which is then
 * renamed into place.
 */
public final class ModelDirectory {
    public static final String MODEL_FILE = "model.onnx";
    public static final String MANIFEST_FILE = "attnskip.json";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final Path dir;
    private final ModelManifest manifest;

    private ModelDirectory(Path dir, ModelManifest manifest) {
        this.dir = dir;
        this.manifest = manifest;
    }

    public Path dir() {
        return dir;
    }

    public ModelManifest manifest() {
        return manifest;
    }

    public Path modelFile() {
        return ConfinedPath.resolve(dir, manifest.model() != null ? manifest.model() : MODEL_FILE,
                MANIFEST_FILE + "'s model file");
    }

    /** The tokenizer file, or null for a model without one (synthetic weights). */
    public Path tokenizerFile() {
        return manifest.tokenizer() == null ? null
                : ConfinedPath.resolve(dir, manifest.tokenizer().file(), MANIFEST_FILE + "'s tokenizer file");
    }

    public static boolean isModelDirectory(Path path) {
        return Files.isRegularFile(path.resolve(MANIFEST_FILE));
    }

    public static ModelDirectory read(Path dir) {
        Path manifestFile = dir.resolve(MANIFEST_FILE);
        if (!Files.isRegularFile(manifestFile)) {
            throw new BadInputException("not a model directory (no " + MANIFEST_FILE + "): " + dir);
        }
        ModelManifest m;
        try {
            m = JSON.readValue(manifestFile.toFile(), ModelManifest.class);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + manifestFile + ": " + firstLine(e.getMessage()), e);
        }
        if (m.architecture() == null || (m.tokenizer() != null && m.tokenizer().file() == null)) {
            throw new BadInputException(manifestFile + " lacks its architecture or its tokenizer's file name");
        }
        ModelDirectory md = new ModelDirectory(dir, m);
        for (Path needed : new Path[] {md.modelFile(), md.tokenizerFile()}) {
            if (needed != null && !Files.isRegularFile(needed)) {
                throw new BadInputException("model directory " + dir + " is missing " + needed.getFileName());
            }
        }
        return md;
    }

    /**
     * Writes a model directory at {@code target}, replacing an earlier model directory there but
     * refusing to replace anything else.
     *
     * @param tokenizer     the tokenizer file to copy in, under the name the manifest gives; null for none
     * @param externalData  keep the weights in {@code model.onnx.data} (they go there anyway above 1.5 GB)
     */
    public static ModelDirectory write(Path target, ModelProto model, ModelManifest manifest, Path tokenizer,
                                       boolean externalData) {
        return write(target, model, manifest, tokenizer, externalData, List.of());
    }

    /**
     * As above, also copying {@code companions} in under their own names (a Hugging Face
     * checkpoint's tokenizer_config.json, whose chat template {@code serve} renders).
     */
    public static ModelDirectory write(Path target, ModelProto model, ModelManifest manifest, Path tokenizer,
                                       boolean externalData, List<Path> companions) {
        return write(target, manifest, tokenizer, companions,
                staging -> OnnxModelIO.save(model, null, staging.resolve(MODEL_FILE), externalData));
    }

    /**
     * Writes a model directory whose graph is built straight into it: {@code graph} gets the
     * writer of {@code model.onnx.data}, declares its weights into it one by one and returns the
     * graph, which then holds only references to them. The data is on disk before the directory
     * is renamed into place.
     *
     * @param progress told after each tensor is written; may be null
     */
    public static ModelDirectory writeStreamed(Path target, ModelManifest manifest, Path tokenizer, List<Path> companions,
                                               ExternalDataWriter.Listener progress,
                                               Function<ExternalDataWriter, ModelProto> graph) {
        return write(target, manifest, tokenizer, companions, staging -> {
            String dataName = MODEL_FILE + ".data";
            ModelProto model;
            try (ExternalDataWriter data = new ExternalDataWriter(staging.resolve(dataName), dataName, progress)) {
                model = graph.apply(data);
                data.force();
            }
            try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(staging.resolve(MODEL_FILE)), 1 << 20)) {
                model.writeTo(os);
            }
        });
    }

    private interface ModelFileWriter {
        void writeInto(Path staging) throws IOException;
    }

    private static ModelDirectory write(Path target, ModelManifest manifest, Path tokenizer, List<Path> companions,
                                        ModelFileWriter modelFile) {
        Path out = target.toAbsolutePath().normalize();
        OutputPath.refuseLink(out);
        checkReplaceable(out);
        if ((tokenizer == null) != (manifest.tokenizer() == null)) {
            throw new IllegalArgumentException("the manifest names a tokenizer exactly when one is given");
        }
        if (tokenizer != null && !Files.isRegularFile(tokenizer)) {
            throw new BadInputException("no such tokenizer file: " + tokenizer);
        }
        Path parent = out.getParent();
        Path staging = null;
        try {
            Files.createDirectories(parent);
            LeftoverTemps.clean(out);
            staging = Files.createTempDirectory(parent, LeftoverTemps.partialPrefix(out));
            modelFile.writeInto(staging);
            if (tokenizer != null) {
                Files.copy(tokenizer, ConfinedPath.resolve(staging, manifest.tokenizer().file(), "the tokenizer file name"));
            }
            try (OutputStream manifestOut = FileWrites.create(staging.resolve(MANIFEST_FILE))) {
                manifestOut.write((JSON.writeValueAsString(manifest) + "\n").getBytes(StandardCharsets.UTF_8));
            }
            for (Path companion : companions) {
                Files.copy(companion, staging.resolve(companion.getFileName().toString()));
            }
            makeReadable(staging);
            moveIntoPlace(staging, out);
            staging = null;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise the manifest", e);
        } catch (IOException e) {
            throw new BadInputException("cannot write model directory " + out + ": " + e.getMessage(), e);
        } finally {
            LeftoverTemps.deleteTree(staging);
        }
        return read(out);
    }

    private static void checkReplaceable(Path out) {
        if (!Files.exists(out)) {
            return;
        }
        if (!Files.isDirectory(out)) {
            throw new BadInputException("output " + out + " exists and is not a directory");
        }
        if (!isModelDirectory(out) && !isEmptyDirectory(out)) {
            throw new BadInputException("output directory " + out
                    + " exists and is not an attnskip model directory; refusing to overwrite it");
        }
    }

    /** Renames staging to out; an earlier directory there is moved aside first and deleted after. */
    private static void moveIntoPlace(Path staging, Path out) throws IOException {
        Path old = null;
        if (Files.exists(out)) {
            old = LeftoverTemps.asideName(out);
            Files.move(out, old, StandardCopyOption.ATOMIC_MOVE);
        }
        try {
            Files.move(staging, out, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            if (old != null) {
                try {
                    Files.move(old, out, StandardCopyOption.ATOMIC_MOVE);
                } catch (FileAlreadyExistsException ignored) {
                    // out appeared meanwhile: keep it, the old copy stays hidden beside it
                }
            }
            throw e;
        }
        LeftoverTemps.deleteTree(old);
    }

    /**
     * Temporary files and directories are created private (0600/0700) and a copied tokenizer keeps
     * the source's mode, so give the result the usual modes of a directory one shares.
     */
    private static void makeReadable(Path dir) throws IOException {
        if (!Files.getFileStore(dir).supportsFileAttributeView(PosixFileAttributeView.class)) {
            return;
        }
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
            }
        }
    }

    private static boolean isEmptyDirectory(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            return false;
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unknown error";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
