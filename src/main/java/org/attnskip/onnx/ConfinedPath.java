package org.attnskip.onnx;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * Resolves a file name that a model file names (an external-data location, a file named by
 * {@code attnskip.json}) inside the model's folder, and refuses any name that could leave it:
 * absolute names, names with a {@code ..} component, and names that reach outside through a
 * symbolic link. ONNX's own checker refuses the same (CVE-2022-25882 was its path traversal).
 */
public final class ConfinedPath {
    private ConfinedPath() {
    }

    /**
     * The file {@code name} inside {@code folder}.
     *
     * @param what what names the file, for the message, e.g. "external data of tensor 'w'"
     * @throws BadInputException when the name is empty, absolute, holds {@code ..}, or resolves outside
     */
    public static Path resolve(Path folder, String name, String what) {
        if (name == null || name.isEmpty()) {
            throw new BadInputException(what + " names no file");
        }
        Path relative;
        try {
            relative = Path.of(name);
        } catch (InvalidPathException e) {
            throw new BadInputException(what + " names an invalid file name '" + printable(name) + "'");
        }
        // '\' is a separator on Windows: a name written there must not escape when read here either
        if (relative.isAbsolute() || name.startsWith("/") || name.startsWith("\\") || name.matches("^[A-Za-z]:.*")
                || hasParentStep(name)) {
            throw outside(what, name);
        }
        Path file = folder.resolve(relative);
        if (Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
            try {
                Path real = file.toRealPath();
                if (!real.startsWith(folder.toRealPath())) {
                    throw outside(what, name);
                }
                if (!Files.isRegularFile(real)) {
                    // a directory, a device or a FIFO (which would block the reader forever)
                    throw new BadInputException(what + " '" + printable(name) + "' is not a regular file");
                }
            } catch (IOException e) {
                // a dangling link or an unreadable folder: name the link, not where it leads
                throw new BadInputException(what + " '" + printable(name) + "' cannot be resolved: " + e.getMessage());
            }
        }
        return file;
    }

    private static boolean hasParentStep(String name) {
        for (String part : name.split("[/\\\\]")) {
            if (part.equals("..")) {
                return true;
            }
        }
        return false;
    }

    private static BadInputException outside(String what, String name) {
        return new BadInputException(what + " points outside the model's folder: '" + printable(name)
                + "'; refusing to read it");
    }

    /** The name on one line, control characters escaped, at most 200 characters. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 200; i++) {
            char c = s.charAt(i);
            b.append(Character.isISOControl(c) ? String.format("\\u%04x", (int) c) : c);
        }
        return s.length() > 200 ? b + "..." : b.toString();
    }
}
