package org.attnskip.onnx;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Names of the temporary files and directories that savers write beside a target, and the clean-up
 * of those a killed run left behind. Each name carries the writer's process id
 * ({@code .NAME.partial-PID-...}, {@code .NAME.old-PID-...}), so a later run removes only leftovers of
 * processes that are gone and never a save that is still running.
 */
public final class LeftoverTemps {
    private LeftoverTemps() {
    }

    /** The prefix of a temporary file or directory being written for {@code target}. */
    public static String partialPrefix(Path target) {
        return "." + target.getFileName() + ".partial-" + ProcessHandle.current().pid() + "-";
    }

    /** Where an earlier output is moved while its replacement is renamed into place. */
    public static Path asideName(Path target) {
        return target.resolveSibling("." + target.getFileName() + ".old-" + ProcessHandle.current().pid()
                + "-" + System.nanoTime());
    }

    /**
     * Removes what dead writers left beside {@code target}. An earlier output that was moved aside
     * and never replaced (the writer died between the two renames) is put back instead.
     */
    public static void clean(Path target) {
        Path dir = target.getParent();
        String name = target.getFileName().toString();
        if (dir == null || !Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path p : entries.toList()) {
                String entry = p.getFileName().toString();
                Optional<Long> partial = pidAfter(entry, "." + name + ".partial-");
                Optional<Long> aside = pidAfter(entry, "." + name + ".old-");
                if (partial.isPresent() && !alive(partial.get())) {
                    deleteTree(p);
                } else if (aside.isPresent() && !alive(aside.get())) {
                    if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
                        Files.move(p, target, StandardCopyOption.ATOMIC_MOVE);
                    } else {
                        deleteTree(p);
                    }
                }
            }
        } catch (IOException e) {
            // best effort: leftovers are hidden and never mistaken for output
        }
    }

    private static Optional<Long> pidAfter(String entry, String prefix) {
        if (!entry.startsWith(prefix)) {
            return Optional.empty();
        }
        String rest = entry.substring(prefix.length());
        int dash = rest.indexOf('-');
        try {
            return Optional.of(Long.parseLong(dash < 0 ? rest : rest.substring(0, dash)));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    private static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    /** Deletes a file or a directory tree without following links. */
    public static void deleteTree(Path root) {
        if (root == null || !Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }
}
