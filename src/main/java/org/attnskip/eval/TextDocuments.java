package org.attnskip.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the documents perplexity is measured on: JSONL with a {@code "text"} field per line, or a
 * plain text file whose paragraphs (separated by blank lines) are the documents.
 */
public final class TextDocuments {
    private TextDocuments() {
    }

    public static List<String> read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new BadInputException("no such text file: " + file);
        }
        try {
            List<String> docs = new ArrayList<>();
            if (file.getFileName().toString().endsWith(".jsonl")) {
                ObjectMapper json = new ObjectMapper();
                int lineNo = 0;
                for (String line : Files.readAllLines(file)) {
                    lineNo++;
                    if (line.isBlank()) {
                        continue;
                    }
                    JsonNode node;
                    try {
                        node = json.readTree(line);
                    } catch (IOException e) {
                        throw new BadInputException(file + " line " + lineNo + " is not JSON");
                    }
                    if (!node.has("text") || !node.get("text").isTextual()) {
                        throw new BadInputException(file + " line " + lineNo + " has no \"text\" string");
                    }
                    docs.add(node.get("text").asText());
                }
            } else {
                for (String para : Files.readString(file).split("\\n\\s*\\n")) {
                    if (!para.isBlank()) {
                        docs.add(para.strip());
                    }
                }
            }
            if (docs.isEmpty()) {
                throw new BadInputException(file + " holds no documents");
            }
            return docs;
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage());
        }
    }
}
