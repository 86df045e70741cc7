package org.attnskip.eval;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The evaluation data that ships with attnskip (eval/stories.txt and eval/tasks/*.jsonl): the
 * project folder's copy when run from there, so that edits to it count, else the copy packed into
 * the jar (see pom.xml), extracted to a scratch directory because tasks and text are read as files.
 */
public final class ShippedEvalData {
    static final String RESOURCE_ROOT = "attnskip-eval";

    /** Where the data was found; {@code origin} says which copy, for the user. */
    public record Located(Path stories, Path tasks, String origin) {
    }

    private ShippedEvalData() {
    }

    /** {@code dir}/eval if it holds the data, else the packed copy extracted under {@code scratch}; null if neither. */
    public static Located find(Path dir, Path scratch) {
        Path local = dir.resolve("eval");
        if (Files.isRegularFile(local.resolve("stories.txt")) && Files.isDirectory(local.resolve("tasks"))) {
            return new Located(local.resolve("stories.txt"), local.resolve("tasks"), local + " (project folder)");
        }
        URL root = ShippedEvalData.class.getClassLoader().getResource(RESOURCE_ROOT + "/stories.txt");
        if (root == null) {
            return null;
        }
        Path out = scratch.resolve("eval");
        try {
            copyTree(root.toURI(), out);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the packed evaluation data to " + out, e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        return new Located(out.resolve("stories.txt"), out.resolve("tasks"), "the copy packed into attnskip's jar");
    }

    /** Copies the resource folder holding {@code storiesUri} to {@code out}, from a jar or from a class folder. */
    private static void copyTree(URI storiesUri, Path out) throws IOException {
        if (storiesUri.getScheme().equals("jar")) {
            try (FileSystem jar = FileSystems.newFileSystem(storiesUri, Map.of())) {
                copy(jar.getPath("/" + RESOURCE_ROOT), out);
            }
        } else {
            copy(Path.of(storiesUri).getParent(), out);
        }
    }

    private static void copy(Path from, Path out) throws IOException {
        List<Path> files;
        try (Stream<Path> all = Files.walk(from)) {
            files = all.filter(Files::isRegularFile).toList();
        }
        for (Path f : files) {
            // resolve by name: the jar's paths belong to another file system
            Path target = out.resolve(from.relativize(f).toString());
            Files.createDirectories(target.getParent());
            try (InputStream in = Files.newInputStream(f)) {
                Files.copy(in, target);
            }
        }
    }
}
