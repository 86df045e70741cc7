package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/** Loads and saves ONNX models, keeping external data external, and saving atomically. */
public final class OnnxModelIO {
    /** Tensors at least this large go to the data file when a model is saved with external data. */
    public static final int EXTERNAL_TENSOR_MIN_BYTES = 1024;
    /** A protobuf message cannot exceed 2 GB; above this total, weights must go external. */
    public static final long EXTERNAL_TOTAL_THRESHOLD = 1_500_000_000L;
    /** Subgraphs in subgraphs: deeper than this is a bomb, not a model. */
    private static final int PROTOBUF_DEPTH = 1000;

    private OnnxModelIO() {
    }

    /** A model file, or a model directory holding {@code model.onnx} or exactly one {@code .onnx} file. */
    public static Path resolveModelFile(Path path) {
        if (Files.isDirectory(path)) {
            Path standard = path.resolve("model.onnx");
            if (Files.isRegularFile(standard)) {
                return standard;
            }
            try (var files = Files.list(path)) {
                var onnx = files.filter(p -> p.getFileName().toString().endsWith(".onnx")).toList();
                if (onnx.size() == 1) {
                    return onnx.get(0);
                }
                throw new BadInputException("directory " + path + " holds " + onnx.size()
                        + " .onnx files; name the one to use");
            } catch (IOException e) {
                throw new BadInputException("cannot list directory " + path + ": " + e.getMessage(), e);
            }
        }
        if (!Files.exists(path)) {
            throw new BadInputException("no such file: " + path);
        }
        return path;
    }

    public static LoadedModel load(Path path) {
        Path file = resolveModelFile(path).toAbsolutePath().normalize();
        ModelProto proto;
        try (InputStream in = Files.newInputStream(file)) {
            CodedInputStream coded = CodedInputStream.newInstance(in);
            coded.setSizeLimit(Integer.MAX_VALUE);
            coded.setRecursionLimit(PROTOBUF_DEPTH);
            proto = ModelProto.parseFrom(coded);
        } catch (NoSuchFileException e) {
            throw new BadInputException("no such file: " + file);
        } catch (InvalidProtocolBufferException e) {
            boolean deep = String.valueOf(e.getMessage()).contains("levels of nesting");
            throw new BadInputException("not a valid ONNX model (" + (deep ? "messages nested over " + PROTOBUF_DEPTH
                    + " levels deep" : "truncated or corrupt protobuf") + "): " + file);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (!proto.hasGraph() || proto.getGraph().getNodeCount() == 0) {
            throw new BadInputException("not an ONNX model with a graph: " + file);
        }
        // discovery and every rewrite work on (and save) the flat graph
        FunctionInliner.Inlined flat = FunctionInliner.inlineAndCount(proto);
        LoadedModel model = new LoadedModel(flat.model(), file, file.getParent(), flat.calls());
        checkExternalData(model);
        InitializerSizes.check(model);
        return model;
    }

    /** Fails early, with the file named, when external data is missing or too short. */
    private static void checkExternalData(LoadedModel model) {
        for (TensorProto t : model.proto().getGraph().getInitializerList()) {
            if (!ExternalData.isExternal(t)) {
                continue;
            }
            ExternalData ext = ExternalData.of(t);
            Path data = ext.file(model.baseDir(), t.getName());
            try {
                long size = Files.size(data);
                long need = ext.offset() + Math.max(ext.length(), 0);
                if (need < 0 || need > size) {
                    throw new BadInputException("external data file " + data + " is truncated: tensor '"
                            + t.getName() + "' needs " + need + " bytes, file has " + size);
                }
            } catch (NoSuchFileException e) {
                throw new BadInputException("missing external data file " + data + " (needed by tensor '"
                        + t.getName() + "')");
            } catch (IOException e) {
                throw new BadInputException("cannot read external data file " + data + ": " + e.getMessage(), e);
            }
        }
    }

    /**
     * Saves atomically: the model (and its data file, if any) is written to temporary files beside
     * the target and renamed into place only when complete. External tensors of the source model are
     * copied from {@code sourceBaseDir}. Weights go external when the source had external data,
     * when {@code forceExternal} is set, or when the model would be too large for one message.
     * The data file gets a name no existing file has ({@link DataFileNames}), so the rename of the
     * model is the one commit point: a kill at any moment leaves the old pair or the new pair.
     */
    public static void save(ModelProto proto, Path sourceBaseDir, Path target, boolean forceExternal) {
        Path out = target.toAbsolutePath().normalize();
        Path dir = out.getParent();
        Path plainDataFile = dir.resolve(out.getFileName() + ".data");
        OutputPath.refuseLink(out);
        OutputPath.refuseLink(plainDataFile);
        Set<Path> sources = externalSources(proto, sourceBaseDir);
        refuseOverwritingSource(sources, out, plainDataFile);
        boolean external = forceExternal || hasExternal(proto) || initializerBytes(proto) > EXTERNAL_TOTAL_THRESHOLD;

        Path tmpModel = null;
        Path tmpData = null;
        Path dataFile = null;
        try {
            Files.createDirectories(dir);
            LeftoverTemps.clean(out);
            LeftoverTemps.clean(plainDataFile);
            tmpModel = Files.createTempFile(dir, LeftoverTemps.partialPrefix(out), ".tmp");
            ModelProto toWrite = proto;
            if (external) {
                dataFile = DataFileNames.fresh(out, sources);
                OutputPath.refuseLink(dataFile);
                tmpData = Files.createTempFile(dir, LeftoverTemps.partialPrefix(plainDataFile), ".tmp");
                toWrite = writeExternal(proto, sourceBaseDir, tmpData, dataFile.getFileName().toString());
            }
            try (OutputStream os = new BufferedOutputStream(FileWrites.create(tmpModel), 1 << 20)) {
                toWrite.writeTo(os);
            }
            // createTempFile makes owner-only files; a saved model is an ordinary file
            readableByAll(tmpModel);
            if (tmpData != null) {
                readableByAll(tmpData);
                // a name nothing references yet: the graph at OUT still pairs with its own data
                FileWrites.rename(tmpData, dataFile);
                tmpData = null;
            }
            FileWrites.rename(tmpModel, out);
            tmpModel = null;
        } catch (IOException e) {
            deleteQuietly(dataFile);
            throw new BadInputException("cannot write " + out + ": " + e.getMessage(), e);
        } finally {
            deleteQuietly(tmpModel);
            deleteQuietly(tmpData);
        }
        // committed: the data files the replaced graph used are unreferenced now
        DataFileNames.removeStale(out, dataFile, sources);
    }

    public static void save(LoadedModel source, ModelProto proto, Path target) {
        save(proto, source.baseDir(), target, false);
    }

    private static Set<Path> externalSources(ModelProto proto, Path sourceBaseDir) {
        Set<Path> sources = new HashSet<>();
        if (sourceBaseDir != null) {
            for (TensorProto t : proto.getGraph().getInitializerList()) {
                if (ExternalData.isExternal(t)) {
                    sources.add(sourceBaseDir.resolve(ExternalData.of(t).location()).toAbsolutePath().normalize());
                }
            }
        }
        return sources;
    }

    private static void refuseOverwritingSource(Set<Path> sources, Path out, Path dataFile) {
        if (sources.contains(out) || sources.contains(dataFile)) {
            throw new BadInputException("refusing to overwrite the input's external data file " + dataFile
                    + "; choose another output name");
        }
    }

    private static ModelProto writeExternal(ModelProto proto, Path sourceBaseDir, Path tmpData, String dataName)
            throws IOException {
        GraphProto.Builder graph = proto.getGraph().toBuilder();
        try (ExternalDataWriter data = new ExternalDataWriter(tmpData, dataName, null)) {
            for (int i = 0; i < graph.getInitializerCount(); i++) {
                TensorProto t = graph.getInitializer(i);
                graph.setInitializer(i, ExternalData.isExternal(t) ? data.copy(t, sourceBaseDir) : data.add(t));
            }
        }
        return proto.toBuilder().setGraph(graph).build();
    }

    /** The model with every external tensor read into raw_data; for small models only. */
    public static ModelProto inlineExternalData(ModelProto proto, Path baseDir) {
        GraphProto.Builder graph = proto.getGraph().toBuilder();
        for (int i = 0; i < graph.getInitializerCount(); i++) {
            TensorProto t = graph.getInitializer(i);
            if (ExternalData.isExternal(t)) {
                ByteBuffer bytes = ExternalData.of(t).read(baseDir, t.getName());
                graph.setInitializer(i, t.toBuilder().clearExternalData()
                        .setDataLocation(TensorProto.DataLocation.DEFAULT)
                        .setRawData(ByteString.copyFrom(bytes)).build());
            }
        }
        return proto.toBuilder().setGraph(graph).build();
    }

    private static boolean hasExternal(ModelProto proto) {
        return proto.getGraph().getInitializerList().stream().anyMatch(ExternalData::isExternal);
    }

    private static long initializerBytes(ModelProto proto) {
        long total = 0;
        for (TensorProto t : proto.getGraph().getInitializerList()) {
            total += t.getRawData().size() + 4L * t.getFloatDataCount() + 8L * t.getInt64DataCount();
        }
        return total;
    }

    private static void readableByAll(Path p) throws IOException {
        try {
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system: the platform's defaults apply
        }
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // best effort: a leftover temp file is hidden (dot-prefixed) and harmless
            }
        }
    }
}
