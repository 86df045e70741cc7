package org.attnskip.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A JSONL task file in lm-evaluation-harness's manner: every line is either multiple choice
 * {@code {"context": "...", "choices": ["...", ...], "gold": 0}} or cloze
 * {@code {"context": "...", "continuation": "..."}}. The task is named after its file.
 */
public record Task(String name, List<TaskItem> items) {

    /** One .jsonl file, or every .jsonl file in a directory (sorted by name). */
    public static List<Task> load(Path path) {
        if (Files.isDirectory(path)) {
            try (Stream<Path> files = Files.list(path)) {
                List<Task> tasks = files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted()
                        .map(Task::read).toList();
                if (tasks.isEmpty()) {
                    throw new BadInputException(path + " holds no .jsonl task files");
                }
                return tasks;
            } catch (IOException e) {
                throw new BadInputException("cannot list " + path + ": " + e.getMessage());
            }
        }
        return List.of(read(path));
    }

    public static Task read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new BadInputException("no such task file: " + file);
        }
        String name = file.getFileName().toString().replaceFirst("\\.jsonl$", "");
        ObjectMapper json = new ObjectMapper();
        List<TaskItem> items = new ArrayList<>();
        try {
            int lineNo = 0;
            for (String line : Files.readAllLines(file)) {
                lineNo++;
                if (!line.isBlank()) {
                    items.add(parse(json, line, file + " line " + lineNo));
                }
            }
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage());
        }
        if (items.isEmpty()) {
            throw new BadInputException(file + " holds no task items");
        }
        return new Task(name, List.copyOf(items));
    }

    private static TaskItem parse(ObjectMapper json, String line, String where) {
        JsonNode node;
        try {
            node = json.readTree(line);
        } catch (IOException e) {
            throw new BadInputException(where + " is not JSON");
        }
        if (!node.path("context").isTextual()) {
            throw new BadInputException(where + " has no \"context\" string");
        }
        String context = node.get("context").asText();
        if (node.path("continuation").isTextual()) {
            return TaskItem.cloze(context, node.get("continuation").asText());
        }
        JsonNode choices = node.path("choices");
        if (!choices.isArray() || choices.size() < 2 || !node.path("gold").isInt()) {
            throw new BadInputException(where + " needs \"continuation\", or \"choices\" (2 or more) and an integer \"gold\"");
        }
        List<String> list = new ArrayList<>();
        choices.forEach(c -> list.add(c.asText()));
        int gold = node.get("gold").asInt();
        if (gold < 0 || gold >= list.size()) {
            throw new BadInputException(where + ": gold " + gold + " is not an index into its " + list.size() + " choices");
        }
        return new TaskItem(context, List.copyOf(list), gold);
    }
}
