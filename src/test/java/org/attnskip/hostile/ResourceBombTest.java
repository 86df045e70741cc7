package org.attnskip.hostile;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import org.attnskip.CliRun;
import org.attnskip.export.TinyHfCheckpoint;
import org.attnskip.onnx.OnnxModelIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeMap;

import static org.attnskip.hostile.HostileFiles.assertRefused;
import static org.attnskip.hostile.HostileFiles.snapshot;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Files whose headers claim sizes they do not hold are refused with exit 2, one line, nothing
 * written, and without allocating for the claim: each run must allocate less than
 * {@link #ALLOCATION_BOUND} bytes on its thread (a bomb honoured would allocate gigabytes).
 */
class ResourceBombTest {
    private static final long ALLOCATION_BOUND = 200L << 20;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @TempDir
    Path tmp;

    /** Runs a command line, checks the refusal and that the thread allocated less than the bound. */
    private void assertRefusedCheaply(List<String> args, String... fragments) {
        TreeMap<String, String> before = snapshot(tmp);
        long allocated = THREADS.getCurrentThreadAllocatedBytes();
        CliRun r = CliRun.of(args.toArray(String[]::new));
        allocated = THREADS.getCurrentThreadAllocatedBytes() - allocated;
        assertRefused(r, fragments);
        assertTrue(allocated < ALLOCATION_BOUND, "allocated " + allocated + " bytes");
        assertEquals(before, snapshot(tmp), "nothing written");
    }

    private Path tinyModelWith(java.util.function.UnaryOperator<GraphProto.Builder> edit) throws IOException {
        ModelProto proto = OnnxModelIO.load(HostileFiles.TINY.resolve("model.onnx")).proto();
        Path file = tmp.resolve("bomb.onnx");
        Files.write(file, proto.toBuilder().setGraph(edit.apply(proto.getGraph().toBuilder())).build().toByteArray());
        return file;
    }

    private static GraphProto.Builder firstInitializerDims(GraphProto.Builder g, long... dims) {
        TensorProto.Builder t = g.getInitializer(0).toBuilder().clearDims();
        for (long d : dims) {
            t.addDims(d);
        }
        return g.setInitializer(0, t);
    }

    private void inspectAndOptimizeRefuse(Path model, String... fragments) {
        assertRefusedCheaply(List.of("inspect", model.toString()), fragments);
        assertRefusedCheaply(List.of("optimize", model.toString(), "-o", tmp.resolve("out.onnx").toString(),
                "--drop-attn-above", "0.5"), fragments);
    }

    @Test
    void onnxDimsWhoseProductOverflowsALong() throws IOException {
        Path m = tinyModelWith(g -> firstInitializerDims(g, 1L << 40, 1L << 40));
        inspectAndOptimizeRefuse(m, "whose product overflows a long");
    }

    @Test
    void onnxDimsFarPastTheFileSize() throws IOException {
        Path m = tinyModelWith(g -> firstInitializerDims(g, 1L << 20, 1L << 20));
        inspectAndOptimizeRefuse(m, "(1099511627776 elements of 4 bytes) but holds");
    }

    @Test
    void onnxNegativeDim() throws IOException {
        Path m = tinyModelWith(g -> firstInitializerDims(g, -1, 64));
        inspectAndOptimizeRefuse(m, "has a negative dimension -1");
    }

    @Test
    void onnxInitializerWhoseBytesDisagreeWithItsDims() throws IOException {
        Path m = tinyModelWith(g -> g.setInitializer(0, g.getInitializer(0).toBuilder()
                .setRawData(g.getInitializer(0).getRawData().substring(4))));
        inspectAndOptimizeRefuse(m, "initializer '", "but holds");
    }

    /** If nodes whose then-branches hold If nodes, depth levels deep. */
    private static GraphProto nested(int depth) {
        GraphProto inner = GraphProto.newBuilder().setName("leaf").build();
        for (int i = 0; i < depth; i++) {
            NodeProto node = NodeProto.newBuilder().setOpType("If").addInput("c").addOutput("o" + i)
                    .addAttribute(AttributeProto.newBuilder().setName("then_branch")
                            .setType(AttributeProto.AttributeType.GRAPH).setG(inner))
                    .addAttribute(AttributeProto.newBuilder().setName("else_branch")
                            .setType(AttributeProto.AttributeType.GRAPH).setG(GraphProto.newBuilder().setName("e")))
                    .build();
            inner = GraphProto.newBuilder().setName("g" + i).addNode(node).build();
        }
        return inner;
    }

    @Test
    void subgraphsNestedPastTheLimit() throws IOException {
        Path m = tmp.resolve("deep.onnx");
        Files.write(m, BombModels.model(nested(400)).toByteArray());
        inspectAndOptimizeRefuse(m, "messages nested over 1000 levels deep");
    }

    @Test
    void subgraphsNestedJustWithinTheLimit() throws IOException {
        Path m = tmp.resolve("deep.onnx");
        Files.write(m, BombModels.model(nested(300)).toByteArray());
        inspectAndOptimizeRefuse(m, "no attention found");
    }

    /** Walking a graph must not recurse once per node: a long chain would overflow the stack. */
    @Test
    void aLongChainOfNodes() throws IOException {
        Path m = tmp.resolve("long.onnx");
        Files.write(m, BombModels.model(BombModels.chain(50_000)).toByteArray());
        TreeMap<String, String> before = snapshot(tmp);
        assertRefused(CliRun.of("inspect", m.toString()), "no attention found");
        assertRefused(CliRun.of("optimize", m.toString(), "-o", tmp.resolve("out.onnx").toString(),
                "--drop-attn-above", "0.5"), "no attention found");
        assertEquals(before, snapshot(tmp));
    }

    private Path hfFolderWithSafetensors(byte[] safetensors) throws IOException {
        Path hf = tmp.resolve("hf");
        TinyHfCheckpoint.writeConfig(hf, TinyHfCheckpoint.llamaConfig());
        TinyHfCheckpoint.writeTokenizer(hf);
        Files.write(hf.resolve("model.safetensors"), safetensors);
        return hf;
    }

    @ParameterizedTest
    @CsvSource({"9223372036854775807", "-9223372036854775808", "4294967296"})
    void safetensorsHeaderLengthBeyondTheFile(long claimed) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(claimed);
        Path hf = hfFolderWithSafetensors(b.array());
        assertRefusedCheaply(List.of("export", "--hf", hf.toString(), "-o", tmp.resolve("out").toString()),
                "safetensors", "header");
    }

    private static byte[] safetensorsWithHeader(String json) {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + header.length + 16).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length).put(header).array();
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "[1099511627776, 1099511627776]; bad shape",
            "[1048576, 1048576]; but data_offsets span 16 bytes",
            "[-4, 4]; bad shape"})
    void safetensorsShapeBombs(String shape, String fragment) throws IOException {
        Path hf = hfFolderWithSafetensors(safetensorsWithHeader(
                "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,16]}}"));
        assertRefusedCheaply(List.of("export", "--hf", hf.toString(), "-o", tmp.resolve("out").toString()), fragment);
    }

    /** A legacy (v0) llama2.c header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, then 1 KB. */
    private Path llama2c(int... header) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(28 + 1024).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : header) {
            b.putInt(v);
        }
        Path bin = tmp.resolve("bomb.bin");
        Files.write(bin, b.array());
        Files.write(tmp.resolve("tok.bin"), new byte[16]);
        return bin;
    }

    @ParameterizedTest
    @CsvSource({
            "1073741824, 64, 2, 4, 4, 32, 16",
            "64, 2147483647, 2, 4, 4, 32, 16",
            "64, 128, 2147483647, 4, 4, 32, 16",
            "64, 128, -1, 4, 4, 32, 16",
            "-64, 128, 2, 4, 4, 32, 16",
            "64, 128, 2, 4, 4, -2147483648, 16",
            "64, 128, 2, 4, 4, 2147483647, 16",
            "64, 128, 2, 0, 0, 32, 16",
            "64, 128, 2, 4, 4, 32, 2147483647"})
    void llama2cHeadersWithAbsurdDims(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seq)
            throws IOException {
        Path bin = llama2c(dim, hidden, layers, heads, kvHeads, vocab, seq);
        assertRefusedCheaply(List.of("export", "--llama2c", bin.toString(), "--tokenizer", tmp.resolve("tok.bin").toString(),
                "-o", tmp.resolve("out").toString()), "bomb.bin");
    }

    @Test
    void llama2cTokenizerClaimingHugePieces() throws IOException {
        Path m = tmp.resolve("m");
        HostileFiles.copyTree(HostileFiles.TINY, m);
        ByteBuffer tok = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(64).putFloat(0f).putInt(Integer.MAX_VALUE);
        Files.write(m.resolve("tok.bin"), tok.array());
        HostileFiles.editManifest(m, s -> s.replace("\"vocab\" : 256", "\"vocab\" : 2147483647").replace("\"dtype\"",
                "\"tokenizer\" : {\"kind\" : \"llama2c\", \"file\" : \"tok.bin\"},\n  \"dtype\""));
        assertRefusedCheaply(List.of("generate", m.toString(), "--device", "cpu", "--prompt", "a", "-n", "1"), "tok.bin", "has length 2147483647");
    }

    @Test
    void llama2cTokenizerForAVocabularyOf2To31() throws IOException {
        Path m = tmp.resolve("m");
        HostileFiles.copyTree(HostileFiles.TINY, m);
        ByteBuffer tok = ByteBuffer.allocate(4 + 300 * 9).order(ByteOrder.LITTLE_ENDIAN).putInt(4);
        for (int i = 0; i < 300; i++) {
            tok.putFloat(0f).putInt(1).put((byte) i);
        }
        Files.write(m.resolve("tok.bin"), tok.array());
        HostileFiles.editManifest(m, s -> s.replace("\"vocab\" : 256", "\"vocab\" : 2147483647").replace("\"dtype\"",
                "\"tokenizer\" : {\"kind\" : \"llama2c\", \"file\" : \"tok.bin\"},\n  \"dtype\""));
        assertRefusedCheaply(List.of("generate", m.toString(), "--device", "cpu", "--prompt", "a", "-n", "1"), "tok.bin");
    }
}
