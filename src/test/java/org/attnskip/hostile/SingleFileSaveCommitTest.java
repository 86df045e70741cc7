package org.attnskip.hostile;

import com.google.protobuf.ByteString;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.onnx.FileWrites;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Saving a single-file model with external data over an earlier one: every state the folder passes
 * through (as a kill between any two renames would leave it) reads as the old model with its old
 * weights or the new model with its new weights, never the new graph with old data or the reverse.
 */
class SingleFileSaveCommitTest {
    @TempDir
    Path tmp;

    @AfterEach
    void noObserver() {
        FileWrites.observeRenames(null);
    }

    @Test
    void everyIntermediateStateIsTheOldOrTheNewPair() throws IOException {
        ModelProto base = OnnxModelIO.load(HostileFiles.TINY.resolve("model.onnx")).proto();
        // the graph says which model it is, so that a graph read with the other's data shows
        ModelProto oldModel = withFirstWeight(base, (byte) 1).toBuilder().setDocString("old").build();
        ModelProto newModel = withFirstWeight(base, (byte) 2).toBuilder().setDocString("new").build();
        Path out = tmp.resolve("out/fast.onnx");
        // the expected weights: each model saved alone and read back the same way
        OnnxModelIO.save(oldModel, null, tmp.resolve("ref/old.onnx"), true);
        OnnxModelIO.save(newModel, null, tmp.resolve("ref/new.onnx"), true);
        List<TensorProto> oldWeights = readInlined(tmp.resolve("ref/old.onnx")).getGraph().getInitializerList();
        List<TensorProto> newWeights = readInlined(tmp.resolve("ref/new.onnx")).getGraph().getInitializerList();
        assertTrue(!oldWeights.equals(newWeights), "the two models differ in their weights");
        for (int round = 0; round < 3; round++) {
            ModelProto earlier = round % 2 == 0 ? oldModel : newModel;
            ModelProto later = round % 2 == 0 ? newModel : oldModel;
            List<TensorProto> earlierWeights = round % 2 == 0 ? oldWeights : newWeights;
            List<TensorProto> laterWeights = round % 2 == 0 ? newWeights : oldWeights;
            OnnxModelIO.save(earlier, null, out, true);
            List<Path> states = new ArrayList<>();
            Path stateDir = tmp.resolve("states-" + round);
            FileWrites.observeRenames(() -> states.add(copyOf(out.getParent(), stateDir.resolve("s" + states.size()))));
            OnnxModelIO.save(later, null, out, true);
            FileWrites.observeRenames(null);
            assertEquals(4, states.size(), "two renames, observed before and after each");
            List<String> seen = new ArrayList<>();
            for (Path state : states) {
                ModelProto read = readInlined(state.resolve("fast.onnx"));
                List<TensorProto> weights = read.getGraph().getInitializerList();
                boolean isOld = read.getDocString().equals(earlier.getDocString()) && weights.equals(earlierWeights);
                boolean isNew = read.getDocString().equals(later.getDocString()) && weights.equals(laterWeights);
                assertTrue(isOld || isNew, "round " + round + ", " + state.getFileName() + ": a mixed pair");
                seen.add(isOld ? "old" : "new");
            }
            assertEquals(List.of("old", "old", "old", "new"), seen, "the graph's rename is the commit point");
            // killed after the data rename or after the commit: the next save leaves only its own pair
            for (Path killed : List.of(states.get(1), states.get(3))) {
                OnnxModelIO.save(later, null, killed.resolve("fast.onnx"), true);
                // (the copied graph temp names this live process, so only a later process removes it)
                try (Stream<Path> files = Files.list(killed)) {
                    assertEquals(2, files.filter(f -> !f.getFileName().toString().startsWith(".")).count(),
                            killed.getFileName() + ": the model and one data file");
                }
                assertEquals(laterWeights, readInlined(killed.resolve("fast.onnx")).getGraph().getInitializerList());
            }
            // after the save, only the new pair remains: the replaced data file is gone
            assertEquals(laterWeights, readInlined(out).getGraph().getInitializerList());
            try (Stream<Path> files = Files.list(out.getParent())) {
                assertEquals(2, files.count(), "the model and one data file");
            }
        }
    }

    /** The model with the first byte of its first raw initializer set to {@code b}. */
    private static ModelProto withFirstWeight(ModelProto m, byte b) {
        var g = m.getGraph().toBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            if (!t.getRawData().isEmpty()) {
                byte[] raw = t.getRawData().toByteArray();
                raw[0] = b;
                g.setInitializer(i, t.toBuilder().setRawData(ByteString.copyFrom(raw)));
                return m.toBuilder().setGraph(g).build();
            }
        }
        throw new AssertionError("no raw initializer in the seed model");
    }

    private static ModelProto readInlined(Path file) {
        var loaded = OnnxModelIO.load(file);
        return OnnxModelIO.inlineExternalData(loaded.proto(), loaded.baseDir());
    }

    private static Path copyOf(Path dir, Path to) {
        try {
            HostileFiles.copyTree(dir, to);
            return to;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
