package org.attnskip.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import org.attnskip.CliRun;
import org.attnskip.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad input gives exit 2 and exactly one line naming the problem, never a stack trace. */
class BadModelInputTest {
    @TempDir
    Path tmp;

    static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    private static void assertOneLineError(CliRun r, String mustContain) {
        assertEquals(2, r.code(), r.err());
        String[] lines = r.err().strip().split("\n");
        assertEquals(1, lines.length, "one line, got: " + r.err());
        assertTrue(lines[0].contains(mustContain), lines[0]);
        assertFalse(r.err().contains("\tat "), "no stack trace");
    }

    @Test
    void truncatedFile() throws Exception {
        byte[] full = Files.readAllBytes(Fixtures.model("ortgenai-gpt2-fp32/past.onnx"));
        Path cut = tmp.resolve("cut.onnx");
        Files.write(cut, Arrays.copyOf(full, full.length / 2));
        assertOneLineError(cli("inspect", cut.toString()), "truncated or corrupt");
    }

    @Test
    void missingExternalDataFile() throws Exception {
        Path lonely = tmp.resolve("model.onnx");
        Files.copy(Fixtures.model("ortgenai-llama-fp16/model.onnx"), lonely);
        assertOneLineError(cli("inspect", lonely.toString()), "missing external data file");
    }

    @Test
    void truncatedExternalDataFile() throws Exception {
        Path dir = Fixtures.model("ortgenai-llama-fp16");
        Files.copy(dir.resolve("model.onnx"), tmp.resolve("model.onnx"));
        byte[] data = Files.readAllBytes(dir.resolve("model.onnx.data"));
        Files.write(tmp.resolve("model.onnx.data"), Arrays.copyOf(data, data.length - 1000));
        assertOneLineError(cli("inspect", tmp.resolve("model.onnx").toString()), "is truncated");
    }

    @Test
    void notADecoder() throws Exception {
        Path add = tmp.resolve("add.onnx");
        Files.write(add, singleAdd().toByteArray());
        assertOneLineError(cli("inspect", add.toString()), "no attention found");
    }

    @Test
    void missingFile() {
        assertOneLineError(cli("inspect", tmp.resolve("nope.onnx").toString()), "no such file");
    }

    static ModelProto singleAdd() {
        TypeProto t = TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder()
                .setElemType(TensorProto.DataType.FLOAT_VALUE)
                .setShape(TensorShapeProto.newBuilder().addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(2)))).build();
        GraphProto g = GraphProto.newBuilder().setName("add")
                .addNode(NodeProto.newBuilder().setOpType("Add").addInput("a").addInput("b").addOutput("c"))
                .addInput(ValueInfoProto.newBuilder().setName("a").setType(t))
                .addInput(ValueInfoProto.newBuilder().setName("b").setType(t))
                .addOutput(ValueInfoProto.newBuilder().setName("c").setType(t)).build();
        return ModelProto.newBuilder().setIrVersion(8).setGraph(g)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setVersion(17)).build();
    }
}
