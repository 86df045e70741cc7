package org.attnskip.hostile;

import org.attnskip.CliRun;
import org.attnskip.export.LlamaConfig;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.Llama2cCheckpointWriter;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.export.TinyHfCheckpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the small seed files of the mutation campaign into src/test/resources/seeds. They are
 * committed; rerun this only to change them:
 * {@code ./mvnw -q test-compile dependency:build-classpath -Dmdep.outputFile=cp.txt &&
 * java -cp target/classes:target/test-classes:$(cat cp.txt) org.attnskip.hostile.SeedCorpus}
 */
public final class SeedCorpus {
    static final int VOCAB = 260; // unk, BOS, EOS, 256 byte tokens and one word

    private SeedCorpus() {
    }

    public static void main(String[] args) throws IOException {
        Path root = Path.of(args.length > 0 ? args[0] : "src/test/resources/seeds");
        HostileFiles.deleteTree(root.resolve("onnx"));
        CliRun r = CliRun.of("export", "--synthetic", "layers=2,hidden=16,heads=2,kv_heads=1,ffn=32,vocab=32,seq=16",
                "--seed", "3", "-o", root.resolve("onnx").toString());
        if (r.code() != 0) {
            throw new IllegalStateException(r.err());
        }
        Path llama = Files.createDirectories(root.resolve("llama2c"));
        LlamaConfig c = TestLlamaWeights.config(16, 32, 2, 2, 1, VOCAB, 16, false);
        LlamaWeights w = TestLlamaWeights.random(c, 5);
        Llama2cCheckpointWriter.writeV0(w, llama.resolve("v0.bin"));
        Llama2cCheckpointWriter.writeV1(w, llama.resolve("v1.bin"));
        Llama2cCheckpointWriter.writeV2(w, llama.resolve("v2.bin"), 16);
        Files.write(llama.resolve("tok.bin"), llama2cTokenizer());

        Path hf = root.resolve("hf");
        TinyHfCheckpoint.writeConfig(hf, TinyHfCheckpoint.llamaConfig());
        TinyHfCheckpoint.writeSingle(hf, TinyHfCheckpoint.tensors(false, true, 7), org.attnskip.export.Safetensors.DType.F32);
        TinyHfCheckpoint.writeTokenizer(hf);
        Path sharded = root.resolve("hf-sharded");
        TinyHfCheckpoint.writeConfig(sharded, TinyHfCheckpoint.llamaConfig());
        TinyHfCheckpoint.writeSharded(sharded, TinyHfCheckpoint.tensors(true, false, 8));
        TinyHfCheckpoint.writeTokenizer(sharded);
    }

    /** llama2.c's tokenizer.bin layout: max_token_length, then per token a float score, an int length and the bytes. */
    static byte[] llama2cTokenizer() {
        ByteBuffer b = ByteBuffer.allocate(1 << 14).order(ByteOrder.LITTLE_ENDIAN).putInt(8);
        String[] special = {"<unk>", "\n<s>\n", "\n</s>\n"};
        for (int id = 0; id < VOCAB; id++) {
            byte[] piece = id < 3 ? special[id].getBytes(StandardCharsets.UTF_8)
                    : id < 259 ? String.format("<0x%02X>", id - 3).getBytes(StandardCharsets.UTF_8)
                    : " a".getBytes(StandardCharsets.UTF_8);
            b.putFloat(id < 259 ? 0f : -1f).putInt(piece.length).put(piece);
        }
        byte[] out = new byte[b.position()];
        b.flip().get(out);
        return out;
    }
}
