package org.attnskip.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.ConfinedPath;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntUnaryOperator;

/**
 * The tensors of a Hugging Face checkpoint folder, whether they sit in one
 * {@code model.safetensors} or are sharded as {@code model.safetensors.index.json} says.
 * Shards are opened on first use and closed together.
 */
public final class SafetensorsShards implements Closeable {
    static final String SINGLE_FILE = "model.safetensors";
    static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    /** tensor name -> shard file name */
    private final Map<String, String> weightMap;
    private final Map<String, Safetensors> open = new HashMap<>();

    private SafetensorsShards(Path dir, Map<String, String> weightMap) {
        this.dir = dir;
        this.weightMap = weightMap;
    }

    public static SafetensorsShards open(Path dir) {
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            SafetensorsShards shards = new SafetensorsShards(dir, new LinkedHashMap<>());
            Safetensors file = shards.shard(SINGLE_FILE);
            for (String name : file.names()) {
                shards.weightMap.put(name, SINGLE_FILE);
            }
            return shards;
        }
        Path index = dir.resolve(INDEX_FILE);
        if (!Files.isRegularFile(index)) {
            throw new BadInputException("no " + SINGLE_FILE + " or " + INDEX_FILE + " in " + dir);
        }
        return new SafetensorsShards(dir, readWeightMap(index));
    }

    public boolean contains(String name) {
        return weightMap.containsKey(name);
    }

    /** Reads a tensor as fp32 after checking that its shape is the one the architecture needs. */
    public float[] read(String name, long... expectedShape) {
        return rows(name, null, expectedShape).readAll();
    }

    /**
     * A matrix (or a vector, as one row) of the shape the architecture needs, widened to fp32 as
     * its rows are read; {@code storedRow} maps each row asked for to the row stored, null for none.
     */
    WeightRows rows(String name, IntUnaryOperator storedRow, long... expectedShape) {
        String shardName = weightMap.get(name);
        if (shardName == null) {
            throw new BadInputException("tensor " + name + " is missing from the checkpoint in " + dir);
        }
        Safetensors shard = shard(shardName);
        Safetensors.TensorInfo info = shard.info(name);
        if (!Arrays.equals(info.shape(), expectedShape)) {
            throw new BadInputException("tensor " + name + " in " + shard.file() + " has shape " + info.shapeString()
                    + " but config.json implies " + Arrays.toString(expectedShape));
        }
        boolean vector = expectedShape.length == 1;
        return shard.rows(name, vector ? 1 : (int) expectedShape[0], (int) expectedShape[vector ? 0 : 1], storedRow);
    }

    @Override
    public void close() {
        open.values().forEach(Safetensors::close);
        open.clear();
    }

    private Safetensors shard(String fileName) {
        return open.computeIfAbsent(fileName, f -> {
            Path path = ConfinedPath.resolve(dir, f, "a shard named in " + INDEX_FILE);
            if (!Files.isRegularFile(path)) {
                throw new BadInputException("shard " + f + " named in " + INDEX_FILE + " is missing from " + dir);
            }
            return Safetensors.open(path);
        });
    }

    private static Map<String, String> readWeightMap(Path index) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(index));
        } catch (IOException e) {
            throw new BadInputException("cannot read " + index + ": " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new BadInputException("no weight_map object in " + index);
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            weightMap.put(e.getKey(), e.getValue().asText());
        }
        return weightMap;
    }
}
