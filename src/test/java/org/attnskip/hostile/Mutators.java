package org.attnskip.hostile;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Seeded mutations of seed files: byte-level (bit flips, boundary integers, cuts, repeats), text-level
 * for JSON (numbers and strings replaced by hostile ones) and structure-level for ONNX (dims, nodes,
 * attributes, external-data fields edited on the parsed model, so that mutants reach past the parser).
 */
final class Mutators {
    private static final long[] INTERESTING = {0, 1, -1, 2, 127, 128, 255, 256, 32767, 65535, 65536,
            Integer.MAX_VALUE, Integer.MIN_VALUE, 1L << 31, 1L << 32, 1L << 40, Long.MAX_VALUE, Long.MIN_VALUE};
    private static final String[] JSON_NUMBERS = {"0", "-1", "1", "2", "3", "7", "2147483647", "2147483648", "-2147483648",
            "9223372036854775807", "99999999999999999999999", "1e308", "-1e308", "0.5", "1e-45", "65536", "1048576"};
    private static final String[] JSON_STRINGS = {"", "../../etc/hostname", "/etc/hostname", "model.onnx", "a\u0000b",
            "F64", "I8", "llama", "mistral", "qwen2", "LlamaForCausalLM", "\uFFFF", "x".repeat(300)};
    private static final String[] LOCATIONS = {"../model.onnx", "/etc/hostname", "model.onnx", "missing.data", "", ".",
            "sub/../../x", "attnskip.json"};
    private static final Pattern NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?([eE][-+]?\\d+)?");
    private static final Pattern STRING = Pattern.compile("\"([^\"\\\\]*)\"");

    private Mutators() {
    }

    /** One to three byte-level mutations. */
    static byte[] bytes(byte[] in, Random r) {
        byte[] b = in;
        int n = 1 + r.nextInt(3);
        for (int i = 0; i < n; i++) {
            b = oneByteMutation(b, r);
        }
        return b;
    }

    private static byte[] oneByteMutation(byte[] b, Random r) {
        if (b.length == 0) {
            return new byte[] {(byte) r.nextInt()};
        }
        byte[] out = b.clone();
        switch (r.nextInt(7)) {
            case 0 -> { // bit flips
                for (int k = 1 + r.nextInt(8); k > 0; k--) {
                    int p = r.nextInt(out.length);
                    out[p] ^= (byte) (1 << r.nextInt(8));
                }
            }
            case 1 -> out[r.nextInt(out.length)] = (byte) new int[] {0, 0xff, 0x7f, 0x80, 1}[r.nextInt(5)];
            case 2, 3 -> { // a boundary integer, 4 or 8 bytes little-endian, often on a 4-byte boundary (headers)
                int width = r.nextBoolean() ? 4 : 8;
                if (out.length >= width) {
                    int p = r.nextInt(out.length - width + 1);
                    if (r.nextBoolean()) {
                        p = Math.min(p & ~3, out.length - width);
                    }
                    if (r.nextInt(4) == 0) {
                        p = Math.min(4 * r.nextInt(10), out.length - width); // the header region
                    }
                    ByteBuffer w = ByteBuffer.wrap(out, p, width).order(ByteOrder.LITTLE_ENDIAN);
                    long v = INTERESTING[r.nextInt(INTERESTING.length)];
                    if (width == 4) {
                        w.putInt((int) v);
                    } else {
                        w.putLong(v);
                    }
                }
            }
            case 4 -> out = Arrays.copyOf(b, r.nextInt(b.length)); // truncated
            case 5 -> { // a range deleted
                int from = r.nextInt(b.length);
                int len = 1 + r.nextInt(Math.min(256, b.length - from));
                out = new byte[b.length - len];
                System.arraycopy(b, 0, out, 0, from);
                System.arraycopy(b, from + len, out, from, b.length - from - len);
            }
            default -> { // a range repeated at another place
                int from = r.nextInt(b.length);
                int len = 1 + r.nextInt(Math.min(256, b.length - from));
                int at = r.nextInt(b.length + 1);
                out = new byte[b.length + len];
                System.arraycopy(b, 0, out, 0, at);
                System.arraycopy(b, from, out, at, len);
                System.arraycopy(b, at, out, at + len, b.length - at);
            }
        }
        return out;
    }

    /** JSON: a number or a string replaced by a hostile one, or a byte-level mutation of the text. */
    static byte[] json(byte[] in, Random r) {
        String s = new String(in, StandardCharsets.UTF_8);
        for (int k = 1 + r.nextInt(2); k > 0; k--) {
            switch (r.nextInt(4)) {
                case 0, 1 -> s = replaceOne(s, NUMBER, JSON_NUMBERS[r.nextInt(JSON_NUMBERS.length)], r);
                case 2 -> s = replaceOne(s, STRING, "\"" + JSON_STRINGS[r.nextInt(JSON_STRINGS.length)] + "\"", r);
                default -> {
                    return bytes(s.getBytes(StandardCharsets.UTF_8), r);
                }
            }
        }
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String replaceOne(String s, Pattern p, String with, Random r) {
        Matcher m = p.matcher(s);
        int count = 0;
        while (m.find()) {
            count++;
        }
        if (count == 0) {
            return s;
        }
        int pick = r.nextInt(count);
        m.reset();
        for (int i = 0; i <= pick; i++) {
            m.find();
        }
        return s.substring(0, m.start()) + with + s.substring(m.end());
    }

    /** ONNX: one to three edits of the parsed model. */
    static byte[] onnx(ModelProto seed, Random r) {
        GraphProto.Builder g = seed.getGraph().toBuilder();
        for (int k = 1 + r.nextInt(3); k > 0; k--) {
            oneGraphEdit(g, r);
        }
        return seed.toBuilder().setGraph(g).build().toByteArray();
    }

    private static void oneGraphEdit(GraphProto.Builder g, Random r) {
        int nodes = g.getNodeCount();
        int inits = g.getInitializerCount();
        switch (r.nextInt(10)) {
            case 0 -> { // dims of an initializer
                if (inits > 0) {
                    int i = r.nextInt(inits);
                    TensorProto.Builder t = g.getInitializer(i).toBuilder();
                    if (t.getDimsCount() > 0 && r.nextBoolean()) {
                        t.setDims(r.nextInt(t.getDimsCount()), INTERESTING[r.nextInt(INTERESTING.length)]);
                    } else {
                        t.addDims(INTERESTING[r.nextInt(INTERESTING.length)]);
                    }
                    g.setInitializer(i, t);
                }
            }
            case 1 -> { // a node removed
                if (nodes > 0) {
                    g.removeNode(r.nextInt(nodes));
                }
            }
            case 2 -> { // a node's op type swapped for another node's
                if (nodes > 1) {
                    int i = r.nextInt(nodes);
                    g.setNode(i, g.getNode(i).toBuilder().setOpType(g.getNode(r.nextInt(nodes)).getOpType()));
                }
            }
            case 3 -> { // an input rewired to another value
                if (nodes > 1) {
                    int i = r.nextInt(nodes);
                    NodeProto.Builder n = g.getNode(i).toBuilder();
                    NodeProto other = g.getNode(r.nextInt(nodes));
                    if (n.getInputCount() > 0 && other.getOutputCount() > 0) {
                        n.setInput(r.nextInt(n.getInputCount()), other.getOutput(0));
                        g.setNode(i, n);
                    }
                }
            }
            case 4 -> { // an integer attribute set to a boundary value
                if (nodes > 0) {
                    int i = r.nextInt(nodes);
                    NodeProto.Builder n = g.getNode(i).toBuilder();
                    for (int a = 0; a < n.getAttributeCount(); a++) {
                        AttributeProto.Builder at = n.getAttribute(a).toBuilder();
                        if (at.getType() == AttributeProto.AttributeType.INT) {
                            n.setAttribute(a, at.setI(INTERESTING[r.nextInt(INTERESTING.length)]));
                        } else if (at.getType() == AttributeProto.AttributeType.INTS && at.getIntsCount() > 0) {
                            n.setAttribute(a, at.setInts(r.nextInt(at.getIntsCount()), INTERESTING[r.nextInt(INTERESTING.length)]));
                        } else if (at.getType() == AttributeProto.AttributeType.FLOAT) {
                            n.setAttribute(a, at.setF(new float[] {0f, -1f, Float.NaN, Float.POSITIVE_INFINITY, 1e30f}[r.nextInt(5)]));
                        }
                    }
                    g.setNode(i, n);
                }
            }
            case 5 -> { // an initializer removed
                if (inits > 0) {
                    g.removeInitializer(r.nextInt(inits));
                }
            }
            case 6 -> { // an initializer's type or bytes changed
                if (inits > 0) {
                    int i = r.nextInt(inits);
                    TensorProto.Builder t = g.getInitializer(i).toBuilder();
                    if (r.nextBoolean()) {
                        t.setDataType(r.nextInt(18));
                    } else {
                        ByteString raw = t.getRawData();
                        t.setRawData(raw.substring(0, raw.isEmpty() ? 0 : r.nextInt(raw.size())));
                    }
                    g.setInitializer(i, t);
                }
            }
            case 7 -> { // an initializer made external, pointing somewhere
                if (inits > 0) {
                    int i = r.nextInt(inits);
                    TensorProto.Builder t = g.getInitializer(i).toBuilder().clearRawData()
                            .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                            .addExternalData(entry("location", LOCATIONS[r.nextInt(LOCATIONS.length)]));
                    if (r.nextBoolean()) {
                        t.addExternalData(entry("offset", Long.toString(INTERESTING[r.nextInt(INTERESTING.length)])));
                    }
                    if (r.nextBoolean()) {
                        t.addExternalData(entry("length", r.nextBoolean() ? "x" : Long.toString(INTERESTING[r.nextInt(INTERESTING.length)])));
                    }
                    g.setInitializer(i, t);
                }
            }
            case 8 -> { // a node duplicated (two producers of one value)
                if (nodes > 0) {
                    g.addNode(g.getNode(r.nextInt(nodes)));
                }
            }
            default -> { // a graph input or output removed
                if (r.nextBoolean() && g.getInputCount() > 0) {
                    g.removeInput(r.nextInt(g.getInputCount()));
                } else if (g.getOutputCount() > 0) {
                    g.removeOutput(r.nextInt(g.getOutputCount()));
                }
            }
        }
    }

    private static StringStringEntryProto entry(String k, String v) {
        return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }
}
