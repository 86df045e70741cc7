package org.attnskip.onnx;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Where model savers open their output streams. Production code always gets a plain file stream;
 * tests install a fault (a disk that fills after some bytes) to check that a failed save loses
 * nothing. This is the only seam: there is no other way to make a real disk fill on demand.
 */
public final class FileWrites {
    /** A simulated fault: given the file being written, may wrap its stream. */
    public interface Fault {
        OutputStream wrap(Path file, OutputStream out) throws IOException;
    }

    private static volatile Fault fault;
    private static volatile Runnable aroundRename;

    private FileWrites() {
    }

    /** Opens {@code file} for writing (it must be a fresh temporary file). */
    public static OutputStream create(Path file) throws IOException {
        OutputStream out = Files.newOutputStream(file);
        Fault f = fault;
        return f == null ? out : f.wrap(file, out);
    }

    /** Renames a finished temporary file onto {@code target} in one atomic step, replacing it. */
    public static void rename(Path from, Path target) throws IOException {
        Runnable observer = aroundRename;
        if (observer != null) {
            observer.run();
        }
        Files.move(from, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        if (observer != null) {
            observer.run();
        }
    }

    /**
     * For tests: runs {@code observer} just before and just after every later rename (null removes
     * it), so a test sees each state the output folder passes through, as a kill would leave it.
     */
    public static void observeRenames(Runnable observer) {
        aroundRename = observer;
    }

    /** For tests: installs a fault for every later write, or removes it with null. */
    public static void injectFault(Fault f) {
        fault = f;
    }

    /** A fault that lets {@code bytes} bytes through in total, then fails as a full disk does. */
    public static Fault diskFullAfter(long bytes) {
        long[] left = {bytes};
        return (file, out) -> new FilterOutputStream(out) {
            @Override
            public void write(int b) throws IOException {
                take(1);
                out.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                take(len);
                out.write(b, off, len);
            }

            private void take(int n) throws IOException {
                synchronized (left) {
                    if (left[0] < n) {
                        left[0] = 0;
                        throw new IOException("No space left on device");
                    }
                    left[0] -= n;
                }
            }
        };
    }
}
