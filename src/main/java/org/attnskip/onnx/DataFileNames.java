package org.attnskip.onnx;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Names of the external data file of a single-file model {@code OUT}: {@code OUT.data}, or
 * {@code OUT.N.data} when that name is taken. A save never writes to a name that exists, because
 * the graph being replaced may reference it; renaming the graph into place is then the single
 * commit point, and a reader sees the old graph with its old data or the new graph with its new
 * data, never a mix. After the commit the data files the old graph used are removed.
 */
final class DataFileNames {
    private DataFileNames() {
    }

    /** The first of {@code OUT.data}, {@code OUT.1.data}, ... that does not exist and is no input. */
    static Path fresh(Path out, Set<Path> sources) {
        for (int n = 0; ; n++) {
            Path p = out.resolveSibling(out.getFileName() + (n == 0 ? "" : "." + n) + ".data");
            if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !sources.contains(p)) {
                return p;
            }
        }
    }

    /**
     * Removes every data file name of {@code out} except {@code keep} and the inputs: after the
     * commit no graph at {@code out} references them (an earlier save, or one killed after its commit).
     */
    static void removeStale(Path out, Path keep, Set<Path> sources) {
        Pattern ours = Pattern.compile(Pattern.quote(out.getFileName().toString()) + "(\\.\\d+)?\\.data");
        try (Stream<Path> entries = Files.list(out.getParent())) {
            for (Path p : entries.toList()) {
                Path abs = p.toAbsolutePath().normalize();
                if (ours.matcher(p.getFileName().toString()).matches() && !abs.equals(keep) && !sources.contains(abs)
                        && !Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                    Files.deleteIfExists(p);
                }
            }
        } catch (IOException e) {
            // best effort: a stale data file is unreferenced and harmless, the next save removes it
        }
    }
}
