package org.attnskip.hostile;

import ai.onnx.proto.OnnxMl.ModelProto;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.constraints.IntRange;
import org.attnskip.export.HfCheckpoint;
import org.attnskip.export.HfConfig;
import org.attnskip.export.Llama2cCheckpoint;
import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.Noise;
import org.attnskip.rewrite.FreezeForm;
import org.attnskip.rewrite.DropAttentionPass;
import org.attnskip.rewrite.PaperFreezeEvaluationPass;
import org.attnskip.rewrite.PaperFreezeDeployablePass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.RandomNoisePass;
import org.attnskip.rewrite.SingleInputFreezePass;
import org.attnskip.runtime.TokenizerFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * jqwik properties over every file reader, fed byte-level and structural mutants of the small real
 * seeds (src/test/resources/seeds, mutated by the campaign's {@link Mutators}): each reader either
 * succeeds or throws {@link BadInputException}, never another exception or Error (an
 * OutOfMemoryError from a size taken on trust included), and finishes within a generous bound.
 * In-process, so far more cases per second than {@link MutationCampaign}'s CLI runs. The default
 * run makes {@code jqwik.tries.default} (25, src/test/resources/junit-platform.properties) tries per
 * property; {@code -Djqwik.tries.default=20000} runs a long campaign.
 */
class ReaderFuzzTest {
    private static final Path SEEDS = Path.of("src/test/resources/seeds");
    /** Far above any honest case (milliseconds); only a hang or a runaway loop reaches it. */
    private static final long CASE_LIMIT_SECONDS = 60;
    private static final ExecutorService RUNNER = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "reader-fuzz");
        t.setDaemon(true);
        return t;
    });

    @Property
    void onnxLoadLayoutAndEveryPass(@ForAll long seed) throws Exception {
        Random r = new Random(seed);
        ModelProto model = OnnxModelIO.load(SEEDS.resolve("onnx/model.onnx")).proto();
        byte[] mutant = r.nextBoolean() ? Mutators.onnx(model, r) : Mutators.bytes(model.toByteArray(), r);
        inFreshDir(dir -> {
            Path file = Files.write(dir.resolve("model.onnx"), mutant);
            readAndRewrite(file, dir);
        });
    }

    @Property
    void externalData(@ForAll long seed) throws Exception {
        Random r = new Random(seed);
        ModelProto model = OnnxModelIO.load(SEEDS.resolve("onnx/model.onnx")).proto();
        inFreshDir(dir -> {
            Path file = dir.resolve("model.onnx");
            OnnxModelIO.save(model, null, file, true);
            Path data = dir.resolve("model.onnx.data");
            if (r.nextBoolean()) {
                Files.write(data, Mutators.bytes(Files.readAllBytes(data), r));
            } else {
                Files.write(file, Mutators.onnx(ModelProto.parseFrom(Files.readAllBytes(file)), r));
            }
            readAndRewrite(file, dir);
        });
    }

    @Property
    void llama2cCheckpointAndTokenizer(@ForAll long seed, @ForAll @IntRange(min = 0, max = 3) int which) throws Exception {
        Random r = new Random(seed);
        String name = List.of("v0.bin", "v1.bin", "v2.bin", "tok.bin").get(which);
        byte[] mutant = Mutators.bytes(Files.readAllBytes(SEEDS.resolve("llama2c").resolve(name)), r);
        inFreshDir(dir -> {
            Path file = Files.write(dir.resolve(name), mutant);
            if (name.equals("tok.bin")) {
                TokenizerFiles.open(file, TokenizerFiles.LLAMA2C, 32000);
            } else {
                Llama2cCheckpoint.read(file);
            }
        });
    }

    @Property
    void huggingFaceFolder(@ForAll long seed, @ForAll boolean sharded) throws Exception {
        Random r = new Random(seed);
        Path seedDir = SEEDS.resolve(sharded ? "hf-sharded" : "hf");
        List<Path> files;
        try (var list = Files.list(seedDir)) {
            files = list.sorted().toList();
        }
        Path victim = files.get(r.nextInt(files.size()));
        String victimName = victim.getFileName().toString();
        byte[] original = Files.readAllBytes(victim);
        byte[] mutant = victimName.endsWith(".json") && r.nextInt(4) != 0 ? Mutators.json(original, r) : Mutators.bytes(original, r);
        inFreshDir(dir -> {
            HostileFiles.copyTree(seedDir, dir);
            Files.write(dir.resolve(victimName), mutant);
            HfConfig.read(dir);
            HfCheckpoint.read(dir);
            TokenizerFiles.open(dir.resolve("tokenizer.json"), TokenizerFiles.HUGGINGFACE, 32000);
        });
    }

    /** Load, discover the layout, apply each rewrite pass to its own copy, save the last. */
    private static void readAndRewrite(Path file, Path dir) {
        LoadedModel loaded = OnnxModelIO.load(file);
        OnnxModelIO.inlineExternalData(loaded.proto(), loaded.baseDir());
        DecoderLayout layout = LayoutDiscovery.discover(loaded.graph());
        LayerSelection half = LayerSelection.fromFraction("0.5", layout.numLayers());
        new PaperFreezeEvaluationPass().apply(loaded.graph(), layout, half);
        new PaperFreezeDeployablePass().apply(loaded.graph(), layout, half);
        new SingleInputFreezePass(FreezeForm.DEPLOYABLE).apply(loaded.graph(), layout, half);
        new RandomNoisePass(Noise.parse("gaussian")).apply(loaded.graph(), layout, half);
        var g = loaded.graph();
        new DropAttentionPass(32).apply(g, layout, half);
        OnnxModelIO.save(loaded, g.toModel(), dir.resolve("out.onnx"));
    }

    interface Case {
        void run(Path dir) throws Exception;
    }

    /** Runs one case in a fresh folder, within the time bound; fails on anything but BadInputException. */
    private static void inFreshDir(Case c) throws Exception {
        Path dir = Files.createTempDirectory("reader-fuzz");
        Future<?> done = RUNNER.submit(() -> {
            try {
                c.run(dir);
                return "read";
            } catch (BadInputException refused) {
                return "refused"; // the one allowed failure: exit 2 with a message
            }
        });
        try {
            // the tally shows the mutants reach both outcomes, so the readers' checks are exercised
            Statistics.collect(done.get(CASE_LIMIT_SECONDS, TimeUnit.SECONDS));
        } catch (ExecutionException e) {
            throw new AssertionError("a reader failed with something other than BadInputException: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            done.cancel(true);
            throw new AssertionError("a case ran longer than " + CASE_LIMIT_SECONDS + " s");
        } finally {
            deleteQuietly(dir);
        }
    }

    private static void deleteQuietly(Path dir) {
        HostileFiles.deleteTree(dir);
    }
}
